"""Image rows through a real Keras backbone inside the Beam ingest."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras

from csp_tf.data import reader
from csp_tf.data.backbone import check_backbone, decode_image
from csp_tf.data.errors import DataError
from csp_tf.data.ingest import run_ingest

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def image_manifest(tmp_path_factory):
    """Six PNGs of odd sizes (relative paths), one undecodable file and one missing file."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    lines = ["id,lon,lat,label,image_path"]
    for i in range(6):
        pixels = rng.integers(0, 256, (20 + 7 * i, 40 - 3 * i, 3), dtype=np.uint8)
        tf.io.write_file(str(folder / f"img{i}.png"), tf.io.encode_png(pixels))
        lines.append(f"img{i},{10 * i - 30},{5 * i - 10},{'cat' if i % 2 else ''},img{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    lines += ["broken,0,0,,broken.png", "gone,0,0,,missing.png"]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder


def _features_by_id(root):
    out = {}
    for split in ("pretrain", "train", "val", "test"):
        arrays = reader.load_split_arrays(root, split)
        out.update(zip(arrays["id"], arrays["image_features"]))
    return out


def _expected(model, folder, ids, preprocess=lambda x: x):
    images = np.stack([decode_image((folder / f"{i}.png").read_bytes(), IMAGE_SIZE) for i in ids])
    return np.asarray(model(preprocess(images), training=False))


def test_user_keras_model_backbone(image_manifest, tmp_path):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(8)(x))
    path = str(tmp_path / "tiny.keras")
    model.save(path)

    root = str(tmp_path / "data")
    summary = run_ingest(str(image_manifest / "manifest.csv"), root, 8, backbone=path,
                         image_size=IMAGE_SIZE, in_process=True, num_shards=1)
    assert summary["rejected"] == {"image_undecodable": 1, "image_unreadable": 1}
    assert sum(summary["rows_out"].values()) == 6
    got = _features_by_id(root)
    ids = sorted(got)
    want = _expected(model, image_manifest, ids)
    assert np.std(want) > 0
    np.testing.assert_allclose(np.stack([got[i] for i in ids]), want, rtol=1e-5, atol=1e-6)
    assert reader.read_metadata(root).extra["backbone"]["backbone"] == path


def test_keras_applications_backbone_with_local_weights(image_manifest, tmp_path):
    model = keras.applications.MobileNetV3Small(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                                include_top=False, weights=None, pooling="avg")
    # non-trivial weights, so that the loaded ones are visibly not a fresh random init
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.05 * rng.standard_normal(w.shape).astype(w.dtype)
                       if "variance" not in v.path else w for w, v in zip(model.get_weights(), model.weights)])
    weights = str(tmp_path / "mobilenet_v3_small_32.weights.h5")
    model.save_weights(weights)
    width = model.output_shape[-1]

    root = str(tmp_path / "data")
    summary = run_ingest(str(image_manifest / "manifest.csv"), root, width,
                         backbone="MobileNetV3Small", backbone_weights=weights,
                         image_size=IMAGE_SIZE, in_process=True, num_shards=1)
    assert sum(summary["rows_out"].values()) == 6
    got = _features_by_id(root)
    ids = sorted(got)
    want = _expected(model, image_manifest, ids, keras.applications.mobilenet_v3.preprocess_input)
    assert np.std(want) > 0
    np.testing.assert_allclose(np.stack([got[i] for i in ids]), want, rtol=1e-4, atol=1e-5)


def test_backbone_option_errors(tmp_path):
    with pytest.raises(DataError, match="needs explicit weights.*random"):
        check_backbone("ResNet50", None, 224, 2048)
    with pytest.raises(DataError, match="does not exist"):
        check_backbone("ResNet50", str(tmp_path / "nope.weights.h5"), 224, 2048)
    with pytest.raises(DataError, match="unknown backbone"):
        check_backbone("NotANet", "random", 224, 2048)
    with pytest.raises(DataError, match="does not exist"):
        check_backbone(str(tmp_path / "missing.keras"), None, 224, 8)
    with pytest.raises(DataError, match="--feature-dim 576"):
        check_backbone("MobileNetV3Small", "random", 32, 64)


def test_decode_image_handles_gray_and_jpeg():
    gray = tf.io.encode_png(np.full((9, 5, 1), 200, np.uint8)).numpy()
    jpeg = tf.io.encode_jpeg(np.full((7, 7, 3), 10, np.uint8)).numpy()
    for data in (gray, jpeg):
        image = decode_image(data, 16)
        assert image.shape == (16, 16, 3) and image.dtype == np.float32
    with pytest.raises(ValueError):
        decode_image(b"nope", 16)
