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

from csp_tf import warmup
from csp_tf.export import SignatureModule, set_classify_method_name
from serving import contract

FEATURE_DIM = 8
NUM_CLASSES = 5
EMBED_DIM = 4
TOP_K = 3


class StandInCSP(SignatureModule):
    """Fixed random linear location encoder, prior head and image classifier (test fixture)."""

    def __init__(self, feature_dim: int = FEATURE_DIM, num_classes: int = NUM_CLASSES,
                 embed_dim: int = EMBED_DIM, top_k: int = TOP_K, seed: int = 1):
        super().__init__("standin_csp", feature_dim, top_k,
                         [f"standin_class_{c}" for c in range(num_classes)])
        rng = np.random.default_rng(seed)

        def weight(*shape: int) -> tf.Variable:
            return tf.Variable(rng.normal(size=shape).astype(np.float32), trainable=False)

        self.loc_w, self.loc_b = weight(2, embed_dim), weight(embed_dim)
        self.prior_w, self.prior_b = weight(embed_dim, num_classes), weight(num_classes)
        self.img_w, self.img_b = weight(feature_dim, num_classes), weight(num_classes)

    def _embedding(self, lon_lat: tf.Tensor) -> tf.Tensor:
        x = tf.stack([lon_lat[:, 0] / 180.0, lon_lat[:, 1] / 90.0], axis=1)
        return tf.tanh(tf.matmul(x, self.loc_w) + self.loc_b)

    def _prior(self, lon_lat: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(self._embedding(lon_lat), self.prior_w) + self.prior_b)

    def _predict_all(self, lon_lat: tf.Tensor, image_features: tf.Tensor) -> dict[str, tf.Tensor]:
        # A row whose lon and lat are both NaN falls back to the image classifier
        # (docs/reference.md §9).
        no_location = tf.reduce_all(tf.math.is_nan(lon_lat), axis=1)[:, None]
        prior = tf.where(no_location, 1.0, self._prior(tf.where(no_location, 0.0, lon_lat)))
        image_probs = tf.nn.softmax(tf.matmul(image_features, self.img_w) + self.img_b)
        # Not renormalized (docs/reference.md §9).
        return {contract.PROBABILITIES: image_probs * prior,
                contract.IMAGE_PROBABILITIES: image_probs, contract.LOCATION_PROBABILITIES: prior}


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
    signatures = module.signatures()
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
