"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests`` in a version directory.

TF Serving started with ``--enable_model_warmup`` replays this file (a TFRecord of
``PredictionLog`` records, at most 1000) against a freshly loaded version before it marks the
version AVAILABLE, so the first real request does not pay for graph warm-up
(tensorflow/serving ``g3doc/saved_model_warmup.md``). The exporter (:mod:`csp_tf.export`, so
``csp-tf export`` and the TFX Trainers alike) calls :func:`build_warmup_requests` and
:func:`write_warmup_requests`; the development server replays the same file the same way
(:mod:`serving.dev_server`). The signature and input names are those of ``csp_tf.export``;
``serving.contract`` lists them for the serving side (tests/csp_tf/test_warmup.py checks that
the requests use them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from csp_tf import features

MODEL_NAME = "csp"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving reads at most this many records

# Representative coordinates (lon, lat): land and sea, both hemispheres, near the poles and the
# antimeridian, so warmup exercises the whole input range the encoder sees.
_WARMUP_POINTS = np.array(
    [[-122.4, 37.8], [2.35, 48.86], [151.2, -33.9], [-47.9, -15.8], [0.0, 0.0],
     [179.9, -89.5], [-179.9, 89.5], [37.6, 55.8]],
    dtype=np.float32,
)


def serialize_examples(image_features: np.ndarray, lon_lat: np.ndarray) -> list[bytes]:
    """Serialized ``tf.Example`` rows in the ``serving_default`` input format.

    Args:
      image_features: float [N, F] raw image-encoder features.
      lon_lat: float [N, 2] (lon, lat) in degrees; NaN/NaN marks a row without a location.

    Returns:
      N serialized ``tf.Example`` byte strings with ``image_features``, ``lon`` and ``lat``.
    """
    feats = np.asarray(image_features, np.float32)
    coords = np.asarray(lon_lat, np.float32)
    if feats.ndim != 2 or coords.shape != (feats.shape[0], 2):
        raise ValueError(f"image_features must be [N, F] and lon_lat [N, 2]; got "
                         f"{list(feats.shape)} and {list(coords.shape)}")
    rows = []
    for f, (lon, lat) in zip(feats, coords):
        example = tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_FEATURES: tf.train.Feature(float_list=tf.train.FloatList(value=f)),
            features.LON: tf.train.Feature(float_list=tf.train.FloatList(value=[lon])),
            features.LAT: tf.train.Feature(float_list=tf.train.FloatList(value=[lat])),
        }))
        rows.append(example.SerializeToString())
    return rows


def make_predict_request(model_name: str, signature: str,
                         inputs: dict[str, np.ndarray]) -> predict_pb2.PredictRequest:
    """A ``PredictRequest`` for ``signature`` of ``model_name`` with ``inputs`` as tensors."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def build_warmup_requests(model_name: str = MODEL_NAME, feature_dim: int = 0,
                          num_classes: int | None = None, batch_sizes: Sequence[int] = (1,),
                          seed: int = 0) -> list[predict_pb2.PredictRequest]:
    """One representative ``PredictRequest`` per Predict signature (not ``classify``) and batch size.

    Args:
      model_name: model name put in each request's ``model_spec`` (TF Serving ignores it during
        warmup, but a replay against a running server uses it).
      feature_dim: F, the width of ``image_features``.
      num_classes: C; the requests do not depend on it, it is only checked to be positive so a
        caller passing model dimensions learns early about a broken config.
      batch_sizes: batch sizes to warm up, e.g. ``(1, 32)`` when clients send both; every one
        gives one request per signature.
      seed: seed of the (deterministic) image features.

    Returns:
      ``len(batch_sizes) * 4`` requests, ordered by batch size, then signature.

    Raises:
      ValueError: on a non-positive dimension or batch size, or more than 1000 requests.
    """
    if feature_dim <= 0:
        raise ValueError(f"feature_dim must be positive, got {feature_dim}")
    if num_classes is not None and num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if not batch_sizes or any(b <= 0 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive, got {list(batch_sizes)}")
    requests = []
    for batch in batch_sizes:
        coords = np.resize(_WARMUP_POINTS, (batch, 2))  # the points, repeated to fill the batch
        feats = np.random.default_rng(seed).normal(size=(batch, feature_dim)).astype(np.float32)
        examples = np.array(serialize_examples(feats, coords), dtype=object)
        per_signature = {  # csp_tf.export's Predict signatures and their inputs
            "serving_default": {"examples": examples},
            "predict_features": {"image_features": feats, "lon_lat": coords},
            "location_embedding": {"lon_lat": coords},
            "location_prior": {"lon_lat": coords},
        }
        requests += [make_predict_request(model_name, name, inputs)
                     for name, inputs in per_signature.items()]
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(requests)} warmup requests; TF Serving reads at most "
                         f"{MAX_WARMUP_RECORDS}")
    return requests


def write_warmup_requests(saved_model_version_dir: str,
                          requests: Sequence[predict_pb2.PredictRequest]) -> str:
    """Writes ``requests`` as the version's warmup file and returns its path.

    Args:
      saved_model_version_dir: a TF Serving version directory (``<base>/<version>``) that holds
        ``saved_model.pb``.
      requests: 1 to 1000 ``PredictRequest`` protos, each stored as
        ``PredictionLog(predict_log=PredictLog(request=...))``.

    Returns:
      Path of ``<saved_model_version_dir>/assets.extra/tf_serving_warmup_requests``.

    Raises:
      FileNotFoundError: the directory holds no ``saved_model.pb``.
      ValueError: no requests, more than 1000, or a request without a signature name.
    """
    if not tf.io.gfile.exists(os.path.join(saved_model_version_dir, "saved_model.pb")):
        raise FileNotFoundError(f"no saved_model.pb in {saved_model_version_dir}: write the "
                                "SavedModel first, then its warmup requests")
    if not 1 <= len(requests) <= MAX_WARMUP_RECORDS:
        raise ValueError(f"need 1..{MAX_WARMUP_RECORDS} warmup requests, got {len(requests)}")
    for i, request in enumerate(requests):
        if not request.model_spec.signature_name or not request.inputs:
            raise ValueError(f"warmup request {i} has no signature_name or no inputs")
    path = os.path.join(saved_model_version_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """The ``PredictionLog`` records of a warmup file (a file path or a version directory)."""
    if tf.io.gfile.isdir(path):
        path = os.path.join(path, WARMUP_FILE)
    return [prediction_log_pb2.PredictionLog.FromString(record)
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator()]
