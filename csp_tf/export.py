"""Export a trained CSPModel as a SavedModel that ``saved_model_cli`` and TF Serving accept.

Signatures (docs/architecture.md):
* ``serving_default``: serialized ``tf.Example`` (``image_features``, ``lon``, ``lat``) → fused
  probabilities, image / location probabilities, top-k classes and scores.
* ``predict_features``: the same from dense ``image_features`` and ``lon_lat`` tensors.
* ``location_embedding``: ``lon_lat`` → ``embedding`` (B, D).
* ``location_prior``: ``lon_lat`` → ``probabilities`` (B, C), per-class sigmoids.
* ``classify``: method ``tensorflow/serving/classify`` for TF Serving's Classify API: ``inputs``
  (serialized ``tf.Example``, as ``serving_default``) → ``classes`` (B, k) label names and
  ``scores`` (B, k) fused scores, best first.

A row without a location has BOTH ``lon`` and ``lat`` NaN (or both features absent from its
``tf.Example``); it falls back to the image classifier. One NaN coordinate is an error
(INVALID_ARGUMENT naming ``longitude`` or ``latitude``), as is any NaN in ``location_prior`` /
``location_embedding``.

The version directory also holds ``assets.extra/``: TF Serving warmup requests, the config,
the label names and the ``.keras`` model. The directory appears atomically (written under a
temporary name, then renamed), so a server polling the base path never sees half a model.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Optional, Sequence

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from csp_tf import coords, diskspace, locks
from csp_tf import features as fk
from csp_tf.configs import ExperimentConfig
from csp_tf.models import CSPModel

log = logging.getLogger("csp_tf")

ASSETS_EXTRA = "assets.extra"
CLASSIFY_SIGNATURE = "classify"
CLASSIFY_METHOD = "tensorflow/serving/classify"  # TF Serving's kClassifyMethodName


def check_lon_lat(lon_lat: tf.Tensor, allow_missing: bool) -> tf.Tensor:
    """Fails with InvalidArgumentError unless every row is finite and in range (degrees).

    The in-graph twin of ``csp_tf.coords.check_lon_lat_array`` (same bounds, same wording).
    With ``allow_missing`` a row whose lon AND lat are both NaN means "no location" and passes;
    a row with only one NaN coordinate still fails, naming that coordinate.
    """
    missing = tf.reduce_all(tf.math.is_nan(lon_lat), axis=1)
    note = f" ({coords.NO_LOCATION})" if allow_missing else ""
    checks = []
    for col, field in enumerate(coords.FIELDS):
        value = lon_lat[:, col]
        ok = tf.math.is_finite(value) & (tf.abs(value) <= coords.BOUNDS[field])
        if allow_missing:
            ok |= missing
        checks.append(tf.debugging.Assert(tf.reduce_all(ok), [
            f"lon_lat: {coords.rule(field)}{note}; bad rows:", tf.where(~ok)[:, 0],
            "values:", tf.boolean_mask(value, ~ok)], summarize=10))
    with tf.control_dependencies(checks):
        return tf.identity(lon_lat)


class SignatureModule(tf.Module):
    """The five signatures over three functions a subclass provides: ``_predict_all(lon_lat,
    image_features)`` (fused, image and location probabilities; a row whose lon and lat are
    both NaN is image-only), ``_embedding(lon_lat)`` and ``_prior(lon_lat)``."""

    def __init__(self, name: str, feature_dim: int, top_k: int, label_names: Sequence[str]):
        super().__init__(name=name)
        self.feature_dim = int(feature_dim)
        self.top_k = int(min(top_k, len(label_names)))
        self._label_names = [str(c) for c in label_names]
        lon_lat = tf.TensorSpec([None, 2], tf.float32, name="lon_lat")
        self.serve_examples = tf.function(
            self._serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        self.classify = tf.function(
            self._classify, input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        self.predict_features = tf.function(self._predict_features, input_signature=[
            tf.TensorSpec([None, self.feature_dim], tf.float32, name="image_features"), lon_lat])
        self.location_embedding = tf.function(self._location_embedding, input_signature=[lon_lat])
        self.location_prior = tf.function(self._location_prior, input_signature=[lon_lat])

    def _predict_features(self, image_features, lon_lat):
        out = self._predict_all(check_lon_lat(lon_lat, allow_missing=True), image_features)
        top = tf.math.top_k(out["probabilities"], k=self.top_k)
        out.update(top_k_scores=top.values, top_k_classes=top.indices)
        return out

    def _parse_examples(self, examples):
        spec = {
            fk.IMAGE_FEATURES: tf.io.FixedLenFeature([self.feature_dim], tf.float32),
            # A missing lon/lat parses as NaN, i.e. "no location": image-only for that row.
            fk.LON: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
            fk.LAT: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
        }
        parsed = tf.io.parse_example(examples, spec)
        lon_lat = tf.stack([parsed[fk.LON], parsed[fk.LAT]], axis=-1)
        return parsed[fk.IMAGE_FEATURES], lon_lat

    def _serve_examples(self, examples):
        return self._predict_features(*self._parse_examples(examples))

    def _classify(self, inputs):
        """TF Serving Classify: top-k label names (``classes``) and fused scores (``scores``)."""
        out = self._predict_features(*self._parse_examples(inputs))
        labels = tf.constant(self._label_names, tf.string)
        return {"classes": tf.gather(labels, out["top_k_classes"]),
                "scores": out["top_k_scores"]}

    def _location_embedding(self, lon_lat):
        return {"embedding": self._embedding(check_lon_lat(lon_lat, False))}

    def _location_prior(self, lon_lat):
        return {"probabilities": self._prior(check_lon_lat(lon_lat, False))}

    def signatures(self):
        return {"serving_default": self.serve_examples, "predict_features": self.predict_features,
                "location_embedding": self.location_embedding,
                "location_prior": self.location_prior, CLASSIFY_SIGNATURE: self.classify}


class CSPServingModule(SignatureModule):
    """The exported functions; holds the Keras model so its variables are saved."""

    def __init__(self, model: CSPModel, top_k: int = 5,
                 class_names: Optional[Sequence[str]] = None):
        names = list(class_names) if class_names else list(range(model.num_classes))
        if len(names) != model.num_classes:
            raise ValueError(f"{len(names)} class names for a model of {model.num_classes} "
                             "classes")
        super().__init__("csp_serving", model.feature_dim, top_k, names)
        self.model = model

    def _predict_all(self, lon_lat, image_features):
        return self.model.predict_all(lon_lat, image_features)

    def _embedding(self, lon_lat):
        return self.model.location_embedding(lon_lat)

    def _prior(self, lon_lat):
        return self.model.location_probs(lon_lat)


def set_classify_method_name(saved_model_dir: str, signature: str = CLASSIFY_SIGNATURE) -> None:
    """Marks ``signature`` as a ``tensorflow/serving/classify`` SignatureDef in saved_model.pb.

    ``tf.saved_model.save`` writes every signature as ``tensorflow/serving/predict``; TF Serving
    then answers Classify on it only while ``--enable_signature_method_name_check`` is off (its
    default). With the real method name it works either way, and GetModelMetadata says what it
    is. The TF2 loader ignores method names; ``fingerprint.pb`` is rewritten to match.
    """
    path = os.path.join(saved_model_dir, "saved_model.pb")
    with open(path, "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for graph in saved_model.meta_graphs:
        if signature in graph.signature_def:
            graph.signature_def[signature].method_name = CLASSIFY_METHOD
    with open(path, "wb") as f:
        f.write(saved_model.SerializeToString())
    fingerprint = os.path.join(saved_model_dir, "fingerprint.pb")
    if os.path.exists(fingerprint):
        try:
            from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
            data = fingerprinting.CreateFingerprintDef(saved_model_dir)
        except Exception as exc:  # private API; a stale fingerprint only affects metrics
            log.warning("could not rewrite %s (%s); removing it", fingerprint, exc)
            os.remove(fingerprint)
        else:
            with open(fingerprint, "wb") as f:
                f.write(data)


def export_saved_model(model: CSPModel, export_base: str, *, config: Optional[ExperimentConfig] = None,
                       class_names: Optional[Sequence[str]] = None, version: Optional[int] = None,
                       top_k: int = 5, warmup: bool = True, model_name: str = "csp") -> str:
    """Writes ``<export_base>/<version>/`` (the layout TF Serving watches) and returns it.
    ``version`` defaults to the Unix time in seconds (as TFX's Pusher does)."""
    version = int(version if version is not None else time.time())
    # One writer per serving base path (a second export or push is refused naming this one).
    with locks.writer_lock(export_base, "csp-tf export"):
        return write_saved_model(model, os.path.join(export_base, str(version)), config=config,
                                 class_names=class_names, top_k=top_k, warmup=warmup,
                                 model_name=model_name)


def write_saved_model(model: CSPModel, path: str, *, config: Optional[ExperimentConfig] = None,
                      class_names: Optional[Sequence[str]] = None, top_k: int = 5,
                      warmup: bool = True, model_name: str = "csp") -> str:
    """Writes the SavedModel (+ assets.extra) at exactly ``path``, atomically (temp + rename).
    An existing ``path`` that already holds files is an error; an empty one is replaced."""
    if os.path.isdir(path) and os.listdir(path):
        raise FileExistsError(f"export dir {path} already exists and is not empty")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(path)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = CSPServingModule(model, top_k=top_k, class_names=class_names)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        set_classify_method_name(tmp)
        write_assets_extra(tmp, model, config=config, class_names=class_names, warmup=warmup,
                           model_name=model_name)
        diskspace.fsync_tree(tmp)  # on disk before the rename publishes it
    except BaseException as exc:
        # Never leave a half-written version behind (its name is not an integer, so no server
        # loads it, but it holds the space); a full disk names the path and the space.
        written = diskspace.tree_size(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        full = diskspace.disk_full_error(
            exc, "the SavedModel export", tmp, need=_variables_bytes(model) or None,
            written=written, kept="nothing was published: the versions already in "
                                  f"{parent!r} are unchanged and the partial export is removed")
        if full is not None:
            raise full from exc
        raise
    if os.path.isdir(path):
        os.rmdir(path)
    os.replace(tmp, path)
    diskspace.fsync_dir(parent)
    log.info("exported SavedModel to %s", path)
    return path


def _variables_bytes(model) -> int:
    """About what a SavedModel of ``model`` needs: its variables, twice (the SavedModel's
    ``variables/`` and the ``.keras`` copy in assets.extra)."""
    return 2 * sum(int(v.numpy().nbytes) for v in model.weights)


def write_assets_extra(version_dir: str, model: CSPModel, *, config: Optional[ExperimentConfig],
                       class_names: Optional[Sequence[str]], warmup: bool, model_name: str) -> None:
    extra = os.path.join(version_dir, ASSETS_EXTRA)
    os.makedirs(extra, exist_ok=True)
    if config is not None:
        config.save(os.path.join(extra, "config.yaml"))
    if class_names is not None:
        with open(os.path.join(extra, "labels.txt"), "w") as f:
            f.write("\n".join(class_names) + "\n")
    model.save(os.path.join(extra, "model.keras"))
    if warmup:
        from csp_tf.warmup import build_warmup_requests, write_warmup_requests
        write_warmup_requests(version_dir, build_warmup_requests(
            model_name=model_name, feature_dim=model.feature_dim, num_classes=model.num_classes))


def push_saved_model(model_dir: str, export_base: str, version: Optional[int] = None) -> str:
    """Copies the SavedModel directory ``model_dir`` to ``<export_base>/<version>/`` as a new
    version (the TFX Pusher's job), atomically, as one writer of ``export_base``; returns the
    version directory (an existing version is left as it is, as TFX's Pusher does).

    The copy goes to a temporary sibling whose name is not an integer (servers ignore it),
    is fsynced, then renamed into place: a server polling the base path sees the whole version
    or none. Free space for the copy is checked first.

    Raises:
      DiskFullError: too little space (before the copy) or the disk filled during it; the
        versions already served are unchanged and nothing partial is left.
      LockHeldError: another export or push is writing ``export_base``.
    """
    version = int(version if version is not None else time.time())
    path = os.path.join(export_base, str(version))
    with locks.writer_lock(export_base, "csp-tf push"):
        if os.path.exists(path):
            log.info("version %s already exists; not pushed again", path)
            return path
        need = diskspace.tree_size(model_dir)
        kept = f"nothing was published: the versions already in {export_base!r} are unchanged"
        diskspace.check_free_space(export_base, need, f"pushing {model_dir!r}", kept)
        kept += " and the partial copy is removed"
        tmp = os.path.join(export_base, f".tmp-{version}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(model_dir, tmp)
            diskspace.fsync_tree(tmp)
            os.rename(tmp, path)
        except BaseException as exc:
            written = diskspace.tree_size(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            full = diskspace.disk_full_error(exc, f"pushing {model_dir!r}", tmp, need=need,
                                             kept=kept, written=written)
            if full is not None:
                raise full from exc
            raise
        diskspace.fsync_dir(export_base)
    log.info("pushed %s to %s", model_dir, path)
    return path
