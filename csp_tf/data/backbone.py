"""Frozen image backbone for ingest: image files -> feature vectors, a batch at a time.

A backbone is either a ``keras.applications`` architecture name (``MobileNetV3Small``,
``ResNet50``, ...; built with ``include_top=False, pooling="avg"``) or the path of a user
``.keras`` model whose output is (B, F). Weights for an architecture must be named explicitly
(``backbone_weights``), because an accidental random backbone would silently produce
meaningless features:

* a local weights file (``.weights.h5``, or a legacy ``.h5``) saved from the same architecture
  and image size, e.g. ``model.save_weights("resnet50.weights.h5")`` on a machine with access;
* ``imagenet``: Keras downloads its ImageNet weights (needs network access);
* ``random``: seeded random weights (seed 0): for tests and plumbing checks only.

Images are decoded with ``tf.io.decode_image`` (PNG, JPEG, GIF, BMP), converted to RGB,
resized to ``image_size`` x ``image_size`` (bilinear) and given to the model as float32 pixels
in [0, 255], after the architecture's own ``preprocess_input`` (identity for ``.keras`` files:
put any rescaling inside the model).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from apache_beam.metrics import Metrics

from csp_tf.data import validation
from csp_tf.data.errors import DataError

# keras.applications constructor name -> submodule holding its preprocess_input.
APPLICATIONS: Dict[str, str] = {
    "MobileNet": "mobilenet",
    "MobileNetV2": "mobilenet_v2",
    "MobileNetV3Small": "mobilenet_v3",
    "MobileNetV3Large": "mobilenet_v3",
    "ResNet50": "resnet",
    "ResNet101": "resnet",
    "ResNet152": "resnet",
    "ResNet50V2": "resnet_v2",
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception",
    "DenseNet121": "densenet",
    "EfficientNetB0": "efficientnet",
    "EfficientNetB3": "efficientnet",
    "EfficientNetV2B0": "efficientnet_v2",
    "EfficientNetV2S": "efficientnet_v2",
    "ConvNeXtTiny": "convnext",
}
WEIGHTS_HELP = (
    "pass --backbone-weights with a local weights file saved from the same architecture and "
    "image size (model.save_weights('x.weights.h5')), 'imagenet' to let Keras download its "
    "ImageNet weights (needs network access), or 'random' for seeded random weights (tests only)")


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What the image DoFn builds in ``setup``: picklable, checked by ``check_backbone``."""

    backbone: str
    weights: Optional[str]
    image_size: int

    @property
    def is_keras_file(self) -> bool:
        return self.backbone.endswith(".keras")


def check_backbone(backbone: str, weights: Optional[str], image_size: int,
                   feature_dim: int) -> BackboneSpec:
    """Validates the backbone options and its output width, raising ``DataError`` early.

    Builds the model once in the calling process so a missing file, an offline ``imagenet``
    download or a width that is not ``feature_dim`` fails before any worker starts.
    """
    if not isinstance(image_size, int) or image_size < 32:
        raise DataError(f"image_size={image_size!r} must be an integer >= 32")
    spec = BackboneSpec(backbone, weights, image_size)
    if spec.is_keras_file:
        if not _exists(backbone):
            raise DataError(f"backbone model file {backbone!r} does not exist")
        if weights not in (None, ""):
            raise DataError(f"--backbone-weights is for keras.applications architectures; the weights "
                            f"of {backbone!r} are inside the .keras file")
        spec = BackboneSpec(backbone, None, image_size)
    elif backbone in APPLICATIONS:
        if weights in (None, ""):
            raise DataError(f"backbone {backbone!r} needs explicit weights: {WEIGHTS_HELP}")
        if weights not in ("imagenet", "random") and not _exists(weights):
            raise DataError(f"backbone weights file {weights!r} does not exist; {WEIGHTS_HELP}")
    else:
        raise DataError(f"unknown backbone {backbone!r}: give a .keras model file or one of "
                        f"{', '.join(sorted(APPLICATIONS))}")
    try:
        model, _ = load_backbone(spec)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot build backbone {backbone!r} with weights {weights!r}: "
                        f"{type(exc).__name__}: {exc}") from None
    width = model.output_shape[-1] if len(model.output_shape) == 2 else None
    if width != feature_dim:
        raise DataError(f"backbone {backbone!r} outputs shape {model.output_shape}, but feature_dim "
                        f"is {feature_dim}: pass --feature-dim {width}" if width else
                        f"backbone {backbone!r} outputs shape {model.output_shape}, expected (None, F)")
    return spec


def load_backbone(spec: BackboneSpec) -> Tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """Builds (model, preprocess) for a spec; preprocess maps float32 [0, 255] pixels."""
    import keras

    if spec.is_keras_file:  # a .keras model does its own preprocessing
        return keras.saving.load_model(spec.backbone, compile=False), lambda x: x
    constructor = getattr(keras.applications, spec.backbone)
    preprocess = getattr(keras.applications, APPLICATIONS[spec.backbone]).preprocess_input
    weights = spec.weights
    if weights == "random":
        keras.utils.set_random_seed(0)  # the same "random" weights in every worker
        weights = None
    try:
        model = constructor(include_top=False, weights=weights, pooling="avg",
                            input_shape=(spec.image_size, spec.image_size, 3))
    except Exception as exc:
        if spec.weights == "imagenet":
            raise DataError(f"could not get the ImageNet weights of {spec.backbone!r} ({exc}); "
                            f"without network access {WEIGHTS_HELP}") from None
        raise
    return model, preprocess


def decode_image(data: bytes, image_size: int) -> np.ndarray:
    """Image bytes -> float32 RGB (image_size, image_size, 3) in [0, 255]; ValueError if bad."""
    import tensorflow as tf

    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as exc:
        raise ValueError(exc.message.splitlines()[0] if exc.message else str(exc)) from None
    image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size))
    return image.numpy()


class ImageEmbedder:
    """Batches of records with ``image_path`` -> records with ``features`` from the backbone.

    ``embed(records)`` returns (records with ``features`` (float32 [F]) filled in, dead-letter
    ``(reason, line)`` pairs for images that cannot be read or decoded). The model loads once,
    on the first batch; each batch is one forward pass.
    """

    def __init__(self, spec: BackboneSpec) -> None:
        self._spec = spec
        self._forward = None
        self._preprocess = None
        self._embedded = Metrics.counter("csp_tf.ingest", "images_embedded")

    def _load(self) -> None:
        import tensorflow as tf

        model, self._preprocess = load_backbone(self._spec)
        size = self._spec.image_size
        # One trace for every batch size (predict_on_batch retraces per size).
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=[
            tf.TensorSpec([None, size, size, 3], tf.float32)])

    def embed(self, batch: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Tuple[str, str]]]:
        good, images, rejected = [], [], []
        for record in batch:
            try:
                image = decode_image(_read_bytes(record["image_path"]), self._spec.image_size)
            except (OSError, ValueError) as exc:  # OSError: not read; ValueError: not decoded
                reason = "image_unreadable" if isinstance(exc, OSError) else "image_undecodable"
                rejected.append(_reject(record, reason, f"{record['image_path']}: {exc}"))
                continue
            good.append(record)
            images.append(image)
        if not good:
            return [], rejected
        if self._forward is None:
            self._load()
        pixels = self._preprocess(np.stack(images).astype(np.float32))
        features = np.asarray(self._forward(np.asarray(pixels, np.float32)), dtype=np.float32)
        self._embedded.inc(len(good))
        out = []
        for record, vector in zip(good, features):
            if not np.all(np.isfinite(vector)):
                rejected.append(_reject(record, "not_finite", "the backbone produced NaN/inf features"))
                continue
            out.append({**record, "features": vector})
        return out, rejected


def _reject(record: Dict[str, Any], reason: str, detail: str) -> Tuple[str, str]:
    line = json.dumps(validation.rejection(record["raw"], "image_path", reason, record["source"],
                                           detail), sort_keys=True)
    return reason, line


def _read_bytes(path: str) -> bytes:
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            return f.read()
    except Exception as exc:  # Beam wraps missing files in BeamIOError (an IOError)
        raise OSError(str(exc).splitlines()[0]) from None


def _exists(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)
