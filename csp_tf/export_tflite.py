"""On-device export: the location prior and the location embedding as LiteRT (TensorFlow Lite)
files, in float32 and quantised, checked against the trained model when written.

``export_tflite(model, out_dir)`` writes, for each precision asked for:

* ``location_<precision>.tflite``: two signatures, as the SavedModel's (docs/serving.md):
  ``location_prior``: ``lon_lat`` float32 (B, 2) (lon, lat) degrees → ``probabilities`` (B, C)
  (the network's P(y|loc): softmax, or per-class sigmoids for a sigmoid head);
  ``location_embedding``: ``lon_lat`` → ``embedding`` (B, D).
* ``tflite_export.json``: labels, signatures, what each precision is, the place memory's
  absence, and the differences to the trained model measured on ``CHECK_POINTS`` points.

Precisions: ``fp32``; ``int8`` = dynamic-range quantisation (the converter stores the weight
tensors of 1024 values or more as int8, the angle table below included, and keeps smaller ones
and the activations float32: no calibration data needed); ``fp16`` = float16 weights, float32
compute. An ``fp32`` file that differs from the model by more than ``FP32_LIMIT`` is an error
and nothing is written (a trained model's files stay within ``FP32_TOLERANCE``); the quantised
files' differences are measured and recorded.

Three things differ from the SavedModel, on purpose:

* **No place memory.** Its exact neighbour search runs in float64 (top-k over float64 dot
  products inside a ``map_fn`` loop): float64 MatMul, TopKV2, Sin and Cos are not TFLite
  builtins (they need the Flex delegate, and its Asin not even that), so the converter refuses
  it (``memory_conversion_error``); in float32 it would not rank places closer than ~2 km
  (csp_tf.models.place_memory). The files answer the network's prior alone; for a model
  with an active memory that is NOT what its SavedModel's ``location_prior`` answers near
  labeled places, and the CLI, the JSON and docs say so.
* **The position encoding in float32.** The SavedModel computes the gridcell features
  sin/cos(f_s·x) in float64 (TFLite has no float64 Sin/Cos). Here x = n + r with n = round(x)
  whole degrees and |r| ≤ 0.5: sin(f·n), cos(f·n) come from tables computed in float64 at export
  (361 rows), f·r stays small, and the angle-addition formulas join them, so the float32 file
  matches to ~1e-7 where a plain float32 sin(f·x) (f·x up to 1800 rad) would be off by ~1e-4.
  Only the gridcell encoders (every preset's) are supported; others are an error.
* **No coordinate check in the file.** TFLite has no Assert op: an on-device caller must pass
  finite degrees, lon in [-180, 180], lat in [-90, 90] (``TFLiteLocationModel`` checks them,
  as the SavedModel does).

The variables are frozen into constants before conversion: TensorFlow 2.16's converter fails
on a Keras 3 model's variable reads ("missing attribute 'value'").
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from csp_tf.coords import check_lon_lat_array

log = logging.getLogger("csp_tf")

PRECISIONS: Dict[str, str] = {
    "fp32": "float32 weights and activations",
    "int8": "dynamic-range quantisation: weight tensors of 1024+ values stored as int8, "
            "activations float32",
    "fp16": "float16 weights, float32 compute",
}
SIDECAR = "tflite_export.json"
SIGNATURES = ("location_prior", "location_embedding")
# fp32 file vs the model: max |Δ| on probabilities, on embeddings relative to max(1, max |e|).
# A trained model stays within FP32_TOLERANCE (the parity test's bound; only float32 summation
# order differs); the export refuses a file beyond FP32_LIMIT, far below any conversion error,
# and above what very large logits (a sharp softmax) can make of that summation order.
FP32_TOLERANCE = 1e-5
FP32_LIMIT = 1e-4
CHECK_POINTS = 2048  # seeded, uniform on the sphere, plus edge and half-degree points
CHECK_SEED = 20260
GRIDCELL_ENCODERS = ("gridcell", "gridcellnorm")
MEMORY_ABSENT = ("the place memory (the in-model kNN over labeled places) is NOT included: "
                 "these files answer the network's P(y|loc) alone")


class TFLiteExportError(ValueError):
    """The model cannot be exported to TFLite, or the written file does not match it."""


def file_name(precision: str) -> str:
    return f"location_{precision}.tflite"


# ----- the float32 graph --------------------------------------------------------------------

def check_supported(model) -> None:
    """Raises TFLiteExportError unless the model's position encoder has a float32 form here."""
    encoder = model.location_encoder.position_encoder
    name = getattr(encoder, "registry_name", type(encoder).__name__)
    if name not in GRIDCELL_ENCODERS:
        raise TFLiteExportError(
            f"location_encoder.position.type={name!r}: the TFLite export supports "
            f"{', '.join(GRIDCELL_ENCODERS)} (float32 angle-addition tables); this encoder "
            "computes float64 features, which TFLite's builtin ops do not have")


def gridcell_features(encoder, lon_lat: tf.Tensor) -> tf.Tensor:
    """The gridcell features of ``lon_lat`` (B, 2) degrees in float32 ops only, to ~1e-7 of the
    encoder's float64 ones (module docstring): [sin, cos](f_s·lon) for s, then the same for lat."""
    freqs = np.asarray(encoder.frequencies, np.float64)  # (S,)
    whole_degrees = np.arange(-180.0, 181.0)[:, None] * freqs  # (361, S)
    table = np.stack([np.sin(whole_degrees), np.cos(whole_degrees)], -1).astype(np.float32)
    whole = tf.round(lon_lat)
    part = lon_lat - whole  # exact in float32; |part| <= 0.5
    row = tf.cast(tf.clip_by_value(whole, -180.0, 180.0), tf.int32) + 180
    at_whole = tf.gather(tf.constant(table), row)  # (B, 2, S, 2): sin, cos of f·n
    sin_n, cos_n = at_whole[..., 0], at_whole[..., 1]
    angle = part[..., None] * tf.constant(freqs, tf.float32)  # (B, 2, S)
    sin_r, cos_r = tf.sin(angle), tf.cos(angle)
    sin = sin_n * cos_r + cos_n * sin_r
    cos = cos_n * cos_r - sin_n * sin_r
    return tf.reshape(tf.stack([sin, cos], -1), [-1, 4 * int(encoder.frequency_num)])


def lite_embedding(model, lon_lat: tf.Tensor) -> tf.Tensor:
    features = gridcell_features(model.location_encoder.position_encoder, lon_lat)
    return model.location_encoder.network(features, training=False)


def lite_prior(model, lon_lat: tf.Tensor) -> tf.Tensor:
    """The network's P(y|loc), as ``CSPModel.location_probs(..., memory=False)``."""
    logits = tf.cast(model.class_head(lite_embedding(model, lon_lat)), tf.float32)
    if model.location_head == "softmax":
        return tf.nn.softmax(logits, axis=-1)
    return tf.sigmoid(logits)


def _frozen_signatures(model) -> Dict[str, object]:
    """Both signatures with every variable folded into a constant, outputs named."""
    spec = [tf.TensorSpec([None, 2], tf.float32, name="lon_lat")]
    prior = tf.function(lambda lon_lat: {"probabilities": lite_prior(model, lon_lat)},
                        input_signature=spec)
    embedding = tf.function(lambda lon_lat: {"embedding": lite_embedding(model, lon_lat)},
                            input_signature=spec)
    return {"location_prior": convert_frozen(prior),
            "location_embedding": convert_frozen(embedding)}


def convert(model, precision: str) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` at ``precision`` (builtin ops only)."""
    if precision not in PRECISIONS:
        raise TFLiteExportError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    check_supported(model)
    signatures = _frozen_signatures(model)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(tf.Module(), tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(SIGNATURES))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if precision != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def memory_conversion_error(model) -> Optional[str]:
    """What the converter says about the place memory's vote with builtin ops only (None if it
    converts): the evidence behind leaving the memory out."""
    if model.place_memory is None:
        return None
    spec = tf.TensorSpec([None, 2], tf.float32, name="lon_lat")
    c = model.num_classes
    fn = tf.function(lambda lon_lat: {"probabilities": model.place_memory.mix(
        tf.fill([tf.shape(lon_lat)[0], c], 1.0 / c), lon_lat)}, input_signature=[spec])
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(tf.Module(), tmp, signatures={
            "location_prior": convert_frozen(fn)})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["location_prior"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            converter.convert()
        except Exception as exc:  # ConverterError; its text lists the ops TFLite lacks
            return str(exc)
    return None


def convert_frozen(fn):
    """``fn`` (a tf.function with one dict output) with its variables folded into constants."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = fn.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    keys = list(concrete.structured_outputs)
    spec = concrete.structured_input_signature[0]

    def named(*args):
        return dict(zip(keys, tf.nest.flatten(frozen(*args))))

    return tf.function(named, input_signature=list(spec))


# ----- running a file -----------------------------------------------------------------------

class TFLiteLocationModel:
    """A ``.tflite`` file of this export, run with ``tf.lite.Interpreter``; checks coordinates
    first (the file cannot: no Assert op in TFLite)."""

    def __init__(self, path_or_bytes, num_threads: Optional[int] = None):
        kwargs = ({"model_content": path_or_bytes} if isinstance(path_or_bytes, bytes)
                  else {"model_path": os.fspath(path_or_bytes)})
        self.interpreter = tf.lite.Interpreter(num_threads=num_threads, **kwargs)
        self._prior = self.interpreter.get_signature_runner("location_prior")
        self._embedding = self.interpreter.get_signature_runner("location_embedding")

    def prior(self, lon_lat, check: bool = True) -> np.ndarray:
        ll = check_lon_lat_array(lon_lat, "lon_lat") if check else np.asarray(lon_lat, np.float32)
        return self._prior(lon_lat=ll)["probabilities"]

    def embedding(self, lon_lat, check: bool = True) -> np.ndarray:
        ll = check_lon_lat_array(lon_lat, "lon_lat") if check else np.asarray(lon_lat, np.float32)
        return self._embedding(lon_lat=ll)["embedding"]

    def weight_types(self) -> List[str]:
        """The dtypes of the file's constant tensors (what a quantised file stores)."""
        return sorted({d["dtype"].__name__ for d in self.interpreter.get_tensor_details()
                       if d["name"] and "lon_lat" not in d["name"]})


def check_points(n: int = CHECK_POINTS, seed: int = CHECK_SEED) -> np.ndarray:
    """``n`` seeded points uniform on the sphere plus the corners, the poles, the antimeridian
    and half-degree values (where the whole-degree split rounds): float32 (n + 12, 2)."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180.0, 180.0, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    edges = [[-180, -90], [-180, 90], [180, -90], [180, 90], [0, 0], [179.5, 89.5],
             [-179.5, -89.5], [0.5, -0.5], [-0.5, 0.5], [12.5, 45.5], [180, 0], [-180, 0]]
    points = np.concatenate([np.stack([lon, lat], 1), np.asarray(edges, np.float64)])
    return points.astype(np.float32)


def top1_agreement(got: np.ndarray, want: np.ndarray) -> float:
    """Fraction of rows whose top class in ``got`` is a top class of ``want`` (a tie in the
    reference, e.g. two sigmoids saturated at 1.0, accepts either)."""
    top = got.argmax(1)
    return float(np.mean(want[np.arange(len(want)), top] >= want.max(1)))


def compare(runner: TFLiteLocationModel, want_prior: np.ndarray, want_embedding: np.ndarray,
            points: np.ndarray) -> Dict[str, float]:
    """Differences of a file's answers to the reference ones on ``points``."""
    prior, emb = runner.prior(points), runner.embedding(points)
    scale = max(1.0, float(np.abs(want_embedding).max()))
    cos = np.sum(emb * want_embedding, 1) / np.maximum(
        np.linalg.norm(emb, axis=1) * np.linalg.norm(want_embedding, axis=1), 1e-12)
    return {"prior_max_abs_diff": float(np.abs(prior - want_prior).max()),
            "prior_top1_agreement": top1_agreement(prior, want_prior),
            "embedding_max_abs_diff": float(np.abs(emb - want_embedding).max()),
            "embedding_max_rel_diff": float(np.abs(emb - want_embedding).max() / scale),
            "embedding_min_cosine": float(cos.min())}


# ----- the export ---------------------------------------------------------------------------

def export_tflite(model, out_dir: str, *, class_names: Optional[Sequence[str]] = None,
                  precisions: Sequence[str] = tuple(PRECISIONS)) -> Dict:
    """Writes ``out_dir/location_<precision>.tflite`` and ``out_dir/tflite_export.json``
    (returned as a dict). Each file is run on ``check_points()`` against the model first.

    Raises:
      TFLiteExportError: an unsupported encoder or precision, existing files, or an fp32
        file that differs from the model by more than ``FP32_LIMIT``.
    """
    precisions = list(dict.fromkeys(p.strip() for p in precisions))
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise TFLiteExportError(f"precision {','.join(unknown) or '(none)'}: expected one or "
                                f"more of {', '.join(PRECISIONS)}")
    check_supported(model)
    names = [str(c) for c in (class_names or range(model.num_classes))]
    if len(names) != model.num_classes:
        raise TFLiteExportError(f"{len(names)} class names for a model of {model.num_classes} "
                                "classes")
    taken = [f for f in [SIDECAR] + [file_name(p) for p in precisions]
             if os.path.exists(os.path.join(out_dir, f))]
    if taken:
        raise TFLiteExportError(f"{out_dir} already holds {', '.join(taken)}; choose an empty "
                                "--out")

    points = check_points()
    want_prior = model.location_probs(points, memory=False).numpy()
    want_embedding = model.location_embedding(points).numpy()
    blobs, files = {}, {}
    for precision in precisions:
        blob = convert(model, precision)
        measured = compare(TFLiteLocationModel(blob), want_prior, want_embedding, points)
        if precision == "fp32" and max(measured["prior_max_abs_diff"],
                                       measured["embedding_max_rel_diff"]) > FP32_LIMIT:
            raise TFLiteExportError(f"the fp32 TFLite file differs from the model by more than "
                                    f"{FP32_LIMIT:g} on the check points: {measured}")
        blobs[precision] = blob
        files[precision] = {"file": file_name(precision), "bytes": len(blob),
                            "precision": PRECISIONS[precision], "measured": measured}

    sidecar = {
        "format": "tflite",
        "tensorflow": tf.__version__,
        "signatures": _signatures_entry(model),
        "labels": names,
        "input_checks": ("none in the file: pass finite degrees, lon in [-180, 180], lat in "
                         "[-90, 90] (out-of-range values give wrong answers, not errors)"),
        "place_memory": _memory_entry(model),
        "reference": "the trained model: CSPModel.location_probs(memory=False) and "
                     "location_embedding",
        "tolerance": {"fp32": {"tested": FP32_TOLERANCE, "export_refuses_above": FP32_LIMIT,
                               "on": "prior max |diff|; embedding max |diff| / max(1, max |e|)"},
                      "quantised": "measured and recorded, not enforced"},
        "check_points": {"count": int(len(points)), "seed": CHECK_SEED,
                         "layout": "uniform on the sphere + 12 edge/half-degree points"},
        "files": files,
    }
    os.makedirs(out_dir, exist_ok=True)
    for precision, blob in blobs.items():
        with open(os.path.join(out_dir, file_name(precision)), "wb") as f:
            f.write(blob)
    with open(os.path.join(out_dir, SIDECAR), "w") as f:
        json.dump(sidecar, f, indent=2)
    return sidecar


def _signatures_entry(model) -> Dict:
    lon_lat = {"lon_lat": "float32 [B, 2]: (lon, lat) in degrees"}
    head = ("softmax over the classes" if model.location_head == "softmax"
            else "one sigmoid per class (presence)")
    return {"location_prior": {"inputs": lon_lat, "outputs": {"probabilities": (
                f"float32 [B, {model.num_classes}]: the network's P(y|loc), {head}")}},
            "location_embedding": {"inputs": lon_lat, "outputs": {
                "embedding": f"float32 [B, {model.embedding_dim}]"}}}


def _memory_entry(model) -> Dict:
    """The sidecar's ``place_memory``: never included; whether the model has one, and what
    the converter said about it (the message itself goes to the log)."""
    memory = model.place_memory
    if memory is None:
        return {"included": False, "model_has_one": False, "active_in_the_model": False,
                "places": 0, "note": "the model has no place memory"}
    refusal = memory_conversion_error(model)
    if refusal:
        log.debug("the place memory does not convert with TFLite builtin ops: %s", refusal)
    note = MEMORY_ABSENT
    if memory.active:
        note += ("; this model's SavedModel location_prior mixes in the votes of its labeled "
                 "places, so near them it answers differently")
    return {"included": False, "model_has_one": True, "active_in_the_model": memory.active,
            "places": int(memory.size), "note": note,
            "why": ("its exact search runs in float64 (MatMul, TopKV2, Sin/Cos on float64 are "
                    "not TFLite builtins) inside a map_fn loop, and float32 would not rank "
                    "places closer than ~2 km"),
            "converter_with_builtin_ops": "refused" if refusal else "converts"}


def print_summary(sidecar: Dict, out_dir: str) -> None:
    """What ``csp-tf export --format tflite`` prints: each file, its size and its measured
    differences, then the place memory's absence."""
    for precision, entry in sidecar["files"].items():
        m = entry["measured"]
        print(f"wrote {os.path.join(out_dir, entry['file'])} ({entry['bytes'] / 1e6:.2f} MB, "
              f"{precision}: {entry['precision']}); vs the model on "
              f"{sidecar['check_points']['count']} points: P(y|loc) max |diff| "
              f"{m['prior_max_abs_diff']:.1e}, top-1 agreement {m['prior_top1_agreement']:.4f}, "
              f"embedding min cosine {m['embedding_min_cosine']:.6f}")
    print(f"wrote {os.path.join(out_dir, SIDECAR)}")
    memory = sidecar["place_memory"]
    if memory["model_has_one"]:
        print(f"NOTE: {memory['note']} ({memory['places']} places left out)")
    else:
        print("place memory: this model has none; the files answer the same P(y|loc) as its "
              "SavedModel")
