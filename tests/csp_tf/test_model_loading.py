"""csp_tf.models.loading.load_csp_model: a stage dir or a .keras file; clear errors naming the
path."""

import numpy as np
import pytest

from csp_tf.configs import get_preset
from csp_tf.models import CSPModel, build_csp_model
from csp_tf.models.loading import ModelLoadError, load_csp_model

X = np.array([[10.0, 20.0], [-70.0, -30.0]], np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 6
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 16, 8
    model = build_csp_model(cfg)
    stage = tmp_path_factory.mktemp("stage")
    model.save(str(stage / "model.keras"))
    return model, stage


def test_stage_dir_and_keras_file_load_the_same_model(saved):
    model, stage = saved
    want = model.location_embedding(X).numpy()
    for target in (str(stage), str(stage / "model.keras"), stage):
        loaded = load_csp_model(target)
        assert isinstance(loaded, CSPModel)
        np.testing.assert_allclose(loaded.location_embedding(X).numpy(), want, atol=1e-6)


def test_missing_model_names_the_path(tmp_path):
    with pytest.raises(ModelLoadError, match=f"no Keras model at {tmp_path / 'model.keras'}"):
        load_csp_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nowhere.keras"):  # callers' user-error class
        load_csp_model(str(tmp_path / "nowhere.keras"))


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04broken"])
def test_corrupt_model_names_the_path(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=f"cannot load the Keras model {path}"):
        load_csp_model(str(tmp_path))
