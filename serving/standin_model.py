"""A small STAND-IN SavedModel with the production signature contract, for tests and benchmarks.

This is NOT the CSP model and has nothing learned in it: a fixed random linear model
(seeded, deterministic) behind exactly the five signatures of docs/architecture.md —
``serving_default``, ``predict_features``, ``location_embedding``, ``location_prior`` and
``classify`` (method ``tensorflow/serving/classify``) — with the same input/output names and
dtypes, and the export's own in-graph coordinate check (``csp_tf.export.check_lon_lat``: a
row without a location has BOTH lon and lat NaN, one NaN is an error). It lets the serving
stack (client, development server, warmup, benchmark) be tested without a trained export;
``csp_tf.export.export_saved_model`` writes the real one in the same layout.
"""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
import tensorflow as tf

from csp_tf import features, warmup
from csp_tf.export import check_lon_lat, set_classify_method_name
from serving import contract

FEATURE_DIM = 8
NUM_CLASSES = 5
EMBED_DIM = 4
TOP_K = 3


class StandInCSP(tf.Module):
    """Fixed random linear location encoder, prior head and image classifier (test fixture)."""

    def __init__(self, feature_dim: int = FEATURE_DIM, num_classes: int = NUM_CLASSES,
                 embed_dim: int = EMBED_DIM, top_k: int = TOP_K, seed: int = 1):
        super().__init__(name="standin_csp")
        rng = np.random.default_rng(seed)

        def weight(*shape: int) -> tf.Variable:
            return tf.Variable(rng.normal(size=shape).astype(np.float32), trainable=False)

        self.feature_dim, self.top_k = feature_dim, min(top_k, num_classes)
        self.loc_w, self.loc_b = weight(2, embed_dim), weight(embed_dim)
        self.prior_w, self.prior_b = weight(embed_dim, num_classes), weight(num_classes)
        self.img_w, self.img_b = weight(feature_dim, num_classes), weight(num_classes)

        lon_lat_spec = tf.TensorSpec([None, 2], tf.float32, name=contract.LON_LAT)
        feats_spec = tf.TensorSpec([None, feature_dim], tf.float32, name=contract.IMAGE_FEATURES)
        self.serving_default = tf.function(
            self._serving_default,
            input_signature=[tf.TensorSpec([None], tf.string, name=contract.EXAMPLES)])
        self.predict_features = tf.function(self._predict_features,
                                            input_signature=[feats_spec, lon_lat_spec])
        self.location_embedding = tf.function(self._location_embedding,
                                              input_signature=[lon_lat_spec])
        self.location_prior = tf.function(self._location_prior, input_signature=[lon_lat_spec])
        self.classify = tf.function(
            self._classify_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=contract.CLASSIFY_INPUTS)])
        self.label_names = tf.constant([f"standin_class_{c}" for c in range(num_classes)])

    # Building blocks (plain tensors in, tensors out).
    def _embed(self, lon: tf.Tensor, lat: tf.Tensor) -> tf.Tensor:
        x = tf.stack([lon / 180.0, lat / 90.0], axis=1)
        return tf.tanh(tf.matmul(x, self.loc_w) + self.loc_b)

    def _prior(self, lon: tf.Tensor, lat: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(self._embed(lon, lat), self.prior_w) + self.prior_b)

    def _classify(self, image_features: tf.Tensor, prior: tf.Tensor) -> dict[str, tf.Tensor]:
        image_probs = tf.nn.softmax(tf.matmul(image_features, self.img_w) + self.img_b)
        fused = image_probs * prior  # SPEC §9: elementwise product, not renormalized
        scores, classes = tf.math.top_k(fused, k=self.top_k)
        return {contract.PROBABILITIES: fused, contract.IMAGE_PROBABILITIES: image_probs,
                contract.LOCATION_PROBABILITIES: prior, contract.TOP_K_SCORES: scores,
                contract.TOP_K_CLASSES: tf.cast(classes, tf.int32)}

    @staticmethod
    def _split(lon_lat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return lon_lat[:, 0], lon_lat[:, 1]

    # Signatures.
    def _location_prior(self, lon_lat: tf.Tensor) -> dict[str, tf.Tensor]:
        return {contract.PROBABILITIES: self._prior(*self._split(check_lon_lat(lon_lat, False)))}

    def _location_embedding(self, lon_lat: tf.Tensor) -> dict[str, tf.Tensor]:
        return {contract.EMBEDDING: self._embed(*self._split(check_lon_lat(lon_lat, False)))}

    def _predict_features(self, image_features: tf.Tensor,
                          lon_lat: tf.Tensor) -> dict[str, tf.Tensor]:
        # A row whose lon and lat are both NaN falls back to the image classifier (SPEC §9);
        # a single NaN coordinate fails the check naming that field.
        lon, lat = self._split(check_lon_lat(lon_lat, allow_missing=True))
        no_location = tf.math.is_nan(lon) & tf.math.is_nan(lat)
        lon = tf.where(no_location, 0.0, lon)
        lat = tf.where(no_location, 0.0, lat)
        prior = tf.where(no_location[:, None], 1.0, self._prior(lon, lat))
        return self._classify(image_features, prior)

    def _parse(self, examples: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        nan = float("nan")
        parsed = tf.io.parse_example(examples, {
            features.IMAGE_FEATURES: tf.io.FixedLenFeature([self.feature_dim], tf.float32),
            features.LON: tf.io.FixedLenFeature([], tf.float32, default_value=nan),
            features.LAT: tf.io.FixedLenFeature([], tf.float32, default_value=nan),
        })
        lon_lat = tf.stack([parsed[features.LON], parsed[features.LAT]], axis=1)
        return parsed[features.IMAGE_FEATURES], lon_lat

    def _serving_default(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._predict_features(*self._parse(examples))

    def _classify_examples(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        out = self._predict_features(*self._parse(inputs))
        return {contract.CLASSES: tf.gather(self.label_names, out[contract.TOP_K_CLASSES]),
                contract.SCORES: out[contract.TOP_K_SCORES]}


def export_standin(base_dir: str, version: int = 1, seed: int | None = None,
                   feature_dim: int = FEATURE_DIM, num_classes: int = NUM_CLASSES,
                   embed_dim: int = EMBED_DIM, top_k: int = TOP_K,
                   with_warmup: bool = True) -> str:
    """Exports the stand-in model as ``<base_dir>/<version>/`` and returns that directory.

    The version directory is written under a temporary name and renamed into place, so a
    server polling ``base_dir`` never sees it half-written. Beside the SavedModel it writes
    ``assets.extra/labels.txt`` and (``with_warmup``) the TF Serving warmup file.

    Args:
      base_dir: the model base path that a server polls.
      version: positive integer version (directory name).
      seed: weight seed; defaults to ``version`` so each version predicts differently.
      feature_dim, num_classes, embed_dim, top_k: F, C, D and k of the contract.
      with_warmup: write ``assets.extra/tf_serving_warmup_requests``.

    Raises:
      FileExistsError: the version directory exists already.
    """
    final = os.path.join(base_dir, str(int(version)))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; versions are immutable, export a new one")
    staging = os.path.join(base_dir, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    module = StandInCSP(feature_dim, num_classes, embed_dim, top_k,
                        seed=version if seed is None else seed)
    signatures = {name: getattr(module, name).get_concrete_function()
                  for name in contract.SIGNATURES}
    try:
        tf.saved_model.save(module, staging, signatures=signatures)
        set_classify_method_name(staging, contract.CLASSIFY)
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "labels.txt"), "w") as f:
            f.write("".join(f"standin_class_{c}\n" for c in range(num_classes)))
        if with_warmup:
            warmup.write_warmup_requests(
                staging, warmup.build_warmup_requests(contract.MODEL_NAME, feature_dim,
                                                      num_classes, batch_sizes=(1, 4)))
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
