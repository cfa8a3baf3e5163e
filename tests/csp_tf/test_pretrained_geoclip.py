"""GeoCLIP's location encoder in Keras: parity with GeoCLIP's PyTorch output, the pinned wheel,
and fine-tuning from it.

The wheel (40 MB) is obtained as the product does (``csp_tf.pretrained_geoclip.fetch_wheel``:
pip download, sha256 check) into the checkout's ``runs/cache`` and reused from there; the
tests skip only when it can be neither found nor downloaded. The expected vectors
(tests/fixtures/geoclip_parity.npz) come from scripts/make_geoclip_parity_fixture.py, run with
PyTorch in a separate environment.
"""

import hashlib
import os

import numpy as np
import pytest

import csp_cli as cli
from csp_tf import pretrained
from csp_tf.data.errors import DataError
from csp_tf.datasets.sources import read_member
from csp_tf.pretrained_geoclip import (GEOCLIP_SOURCE, WEIGHTS_MEMBER, GeoCLIPError,
                                       export_geoclip_encoder, fetch_wheel, find_wheel,
                                       load_geoclip_encoder)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "geoclip_parity.npz")


@pytest.fixture(scope="module")
def wheel():
    try:
        return fetch_wheel(os.path.join(REPO, "runs", "cache"))
    except DataError as exc:
        pytest.skip(f"{GEOCLIP_SOURCE.requirement} is not cached and cannot be downloaded: {exc}")


@pytest.fixture(scope="module")
def encoder(wheel):
    return load_geoclip_encoder(wheel)


def test_keras_port_equals_geoclip_pytorch(encoder, wheel):
    ref = np.load(FIXTURE)
    weights = read_member(wheel, WEIGHTS_MEMBER)
    assert hashlib.sha256(weights).hexdigest() == str(ref["weights_sha256"])  # the same weights
    got = encoder(ref["lon_lat"]).numpy()
    assert got.shape == (64, 512)
    # GeoCLIP's network evaluated in float64: the function itself.
    np.testing.assert_allclose(got, ref["embedding_float64"], rtol=0, atol=1e-5)
    # GeoCLIP as it runs (float32): its own rounding of the σ = 256 phases (up to ~6e3 rad) is
    # 1.3e-5 on these points, so the port is within that of it, not closer.
    np.testing.assert_allclose(got, ref["embedding"], rtol=0, atol=3e-5)


def test_lat_lon_order_and_antimeridian(encoder):
    ref = np.load(FIXTURE)
    swapped = encoder(ref["lon_lat"][:, ::-1].copy()).numpy()
    assert np.abs(swapped - ref["embedding_float64"]).max() > 1e-2  # (lat, lon) is wrong
    e = encoder(np.array([[180.0, 10.0], [-180.0, 10.0]], np.float32)).numpy()
    # GeoCLIP's projection is not periodic: ±180 are the map's two edges, far apart.
    assert np.abs(e[0] - e[1]).max() > 1e-3


def test_wheel_is_found_and_checked(wheel, tmp_path):
    assert find_wheel(wheel) == wheel and find_wheel(os.path.dirname(wheel)) == wheel
    with pytest.raises(GeoCLIPError, match="csp-tf geoclip fetch --cache"):
        find_wheel(cache_dir=str(tmp_path))
    fake = tmp_path / GEOCLIP_SOURCE.filename
    fake.write_bytes(b"not the wheel")
    with pytest.raises(GeoCLIPError, match="is not the pinned geoclip==1.3.0"):
        find_wheel(str(tmp_path))


@pytest.fixture(scope="module")
def exported(wheel, tmp_path_factory):
    return export_geoclip_encoder(str(tmp_path_factory.mktemp("geoclip") / "enc"), wheel)


def test_exported_directory_reloads_equal(exported, encoder):
    ref = np.load(FIXTURE)
    got = pretrained.load_location_encoder(exported)(ref["lon_lat"]).numpy()
    np.testing.assert_allclose(got, encoder(ref["lon_lat"]).numpy(), rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world

    base = tmp_path_factory.mktemp("world")
    world = generate_world(str(base / "world"), "tiny", seed=3, feature_dim=8)
    run_ingest(world["manifest"], str(base / "data"), feature_dim=8,
               class_names=world["class_names"], num_shards=1, in_process=True)
    return str(base / "data")


def test_finetune_from_geoclip(exported, encoder, root, tmp_path):
    from csp_tf.models.loading import load_csp_model

    tiny = ["--set", "runtime.progress=false", "--set", "finetune.min_steps=0",
            "--set", "finetune.batch_size=64", "--set", "finetune.lr=1e-4",
            "--set", "finetune.image_classifier_epochs=1",
            "--set", "finetune.image_classifier_steps=10", "--set", "finetune.place_memory=false"]
    out = str(tmp_path / "ft")
    assert cli.main(["finetune", "--data-root", root, "--out", out, "--base-model", exported,
                     "--label-ratio", "0.2", "--epochs", "1"] + tiny) == 0
    model = load_csp_model(out)
    got = model.location_encoder.weights
    want = encoder.location_encoder.weights
    assert [v.shape for v in got] == [v.shape for v in want]
    moved = [np.abs(g.numpy() - w.numpy()).max() / np.abs(w.numpy()).max()
             for g, w in zip(got, want)]
    b = [i for i, v in enumerate(want) if tuple(v.shape) == (3, 256, 2)]
    assert len(b) == 1 and moved[b[0]] == 0  # GeoCLIP's Fourier matrices, kept as they are
    trained = [m for i, m in enumerate(moved) if i != b[0]]
    assert 0 < max(trained) < 0.05  # every layer starts from GeoCLIP's weights, and trains


def test_finetune_with_another_encoder_config_is_a_clear_error(exported, root, tmp_path, capsys):
    assert cli.main(["finetune", "--data-root", root, "--out", str(tmp_path / "ft"), "--preset",
                     "demo", "--base-model", exported, "--set", "runtime.progress=false"]) == 2
    assert "this run builds" in capsys.readouterr().err


def test_finetune_from_a_shipped_encoder_by_name(root, tmp_path):
    """`--base-model places`: the shipped encoder's directory, its config (data shapes left to
    this data root, which has 8 features, not the places set's 38) and its weights."""
    from csp_tf.models.loading import load_csp_model

    out = str(tmp_path / "ft")
    assert cli.main(["finetune", "--data-root", root, "--out", out, "--base-model", "places",
                     "--label-ratio", "0.2", "--epochs", "1", "--set", "finetune.lr=1e-9",
                     "--set", "runtime.progress=false", "--set", "finetune.min_steps=0",
                     "--set", "finetune.image_classifier_steps=10",
                     "--set", "finetune.place_memory=false"]) == 0
    shipped = pretrained.load_location_encoder("places")
    x = np.array([[2.35, 48.86], [-70.0, -30.0]], np.float32)
    np.testing.assert_allclose(load_csp_model(out).location_embedding(x).numpy(),
                               shipped(x).numpy(), atol=1e-5)  # lr 1e-9: the shipped weights
