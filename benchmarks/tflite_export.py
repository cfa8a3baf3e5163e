"""On-device export (``csp-tf export --format tflite``): size on disk and per-point latency of
the location prior, SavedModel vs TFLite fp32 vs int8 (dynamic-range) vs fp16, side by side in
one run, on CPU.

For each case (a preset and a class count) one model is built, its weights moved off their
initial values (seeded noise of each variable's own spread: sizes and latencies do not depend on
the values, the agreement figures do), exported both ways, and timed:

* size: the SavedModel's ``saved_model.pb`` + ``variables/`` (what serves the prior; the
  version directory's ``assets.extra/`` also carries a ``.keras`` copy and warmup requests,
  reported apart), and each ``.tflite`` file (both signatures in one file);
* latency of ``location_prior`` at batch 1 and a batch of 256: the loaded SavedModel's
  signature (eager call of the concrete function, its coordinate check included) and a
  ``tf.lite.Interpreter`` per batch size (its signature runner: set input, invoke, read); best of
  ``--rounds`` rounds of enough calls to last 0.2 s, reported per point;
* agreement with the SavedModel on 2 000 random points: top-1 and max |ΔP|.

Both runtimes get ``--threads`` threads (default 1, a phone core's share): TensorFlow's intra-
and inter-op pools and the interpreter's ``num_threads``.

    python benchmarks/tflite_export.py [--cases places:194,inat2018:8142] [--threads 1]
        [--rounds 5] [--out J]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from typing import Callable, Dict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from csp_tf.configs import get_preset  # noqa: E402
from csp_tf.export import export_saved_model  # noqa: E402
from csp_tf.export_tflite import PRECISIONS, export_tflite, file_name, top1_agreement  # noqa: E402
from csp_tf.models import build_csp_model  # noqa: E402
from timing import best_seconds  # noqa: E402  (benchmarks/timing.py)

BATCHES = (1, 256)


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def random_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-180, 180, n),
                 np.degrees(np.arcsin(rng.uniform(-1, 1, n)))].astype(np.float32)


def tflite_prior_call(path: str, batch: int, threads: int, points: np.ndarray) -> Callable:
    """One interpreter per batch size; its signature runner resizes only on the first call
    (TFLite skips a resize to the same shape and an allocation with nothing changed)."""
    runner = tf.lite.Interpreter(model_path=path, num_threads=threads).get_signature_runner(
        "location_prior")
    x = np.ascontiguousarray(points[:batch])
    return lambda: runner(lon_lat=x)["probabilities"]


def measure(preset: str, num_classes: int, threads: int, rounds: int, work: str) -> Dict:
    cfg = get_preset(preset)
    cfg.data.num_classes, cfg.data.feature_dim = num_classes, 38
    model = build_csp_model(cfg)
    rng = np.random.default_rng(0)
    for v in model.weights:
        x = v.numpy()
        v.assign(x + rng.normal(scale=max(float(x.std()), 0.05), size=x.shape).astype(x.dtype))
    case_dir = os.path.join(work, f"{preset}_{num_classes}")
    sm_path = export_saved_model(model, os.path.join(case_dir, "savedmodel"), version=1,
                                 warmup=False)
    lite_dir = os.path.join(case_dir, "tflite")
    sidecar = export_tflite(model, lite_dir)
    saved = tf.saved_model.load(sm_path)
    prior_sig = saved.signatures["location_prior"]
    points = random_points(2000, seed=1)
    want = prior_sig(lon_lat=tf.constant(points))["probabilities"].numpy()

    graph_bytes = (os.path.getsize(os.path.join(sm_path, "saved_model.pb"))
                   + dir_bytes(os.path.join(sm_path, "variables")))
    extra_bytes = dir_bytes(os.path.join(sm_path, "assets.extra"))
    row: Dict = {"preset": preset, "num_classes": num_classes,
                 "embedding_dim": int(model.embedding_dim),
                 "savedmodel": {"bytes": graph_bytes, "assets_extra_bytes": extra_bytes}}
    for b in BATCHES:
        x = tf.constant(points[:b])
        t = best_seconds(lambda: prior_sig(lon_lat=x)["probabilities"].numpy(), rounds)
        row["savedmodel"][f"b{b}_us_per_point"] = 1e6 * t / b
    for precision in PRECISIONS:
        path = os.path.join(lite_dir, file_name(precision))
        entry = {"bytes": os.path.getsize(path),
                 "bytes_vs_savedmodel": os.path.getsize(path) / graph_bytes}
        for b in BATCHES:
            us = 1e6 * best_seconds(tflite_prior_call(path, b, threads, points), rounds) / b
            entry[f"b{b}_us_per_point"] = us
            entry[f"b{b}_speedup_vs_savedmodel"] = row["savedmodel"][f"b{b}_us_per_point"] / us
        got = np.concatenate([tflite_prior_call(path, 250, threads, points[i:i + 250])()
                              for i in range(0, len(points), 250)])
        entry["top1_agreement"] = top1_agreement(got, want)
        entry["max_abs_diff"] = float(np.abs(got - want).max())
        entry["export_check"] = sidecar["files"][precision]["measured"]
        row[precision] = entry
    return row


def table(rows) -> str:
    lines = ["| model | variant | size (MB) | size / SavedModel | batch 1 (µs/point) | "
             "batch 256 (µs/point) | top-1 agreement | max abs diff P(y|loc) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"{r['preset']}, {r['num_classes']} classes"
        sm = r["savedmodel"]
        lines.append(f"| {name} | SavedModel (pb + variables) | {sm['bytes'] / 1e6:.2f} | 1.00 | "
                     f"{sm['b1_us_per_point']:.0f} | {sm['b256_us_per_point']:.2f} | "
                     "(reference) | |")
        for p in PRECISIONS:
            e = r[p]
            lines.append(f"| {name} | TFLite {p} | {e['bytes'] / 1e6:.2f} | "
                         f"{e['bytes_vs_savedmodel']:.2f} | {e['b1_us_per_point']:.0f} | "
                         f"{e['b256_us_per_point']:.2f} | {e['top1_agreement']:.4f} | "
                         f"{e['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="places:194,inat2018:8142",
                    help="comma-separated PRESET:NUM_CLASSES")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for case in args.cases.split(","):
            preset, classes = case.split(":")
            rows.append(measure(preset, int(classes), args.threads, args.rounds, work))
    print(table(rows))
    out = {"benchmark": "tflite_export", "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "threads": args.threads, "tensorflow": tf.__version__,
           "load_avg_1m_at_start": load_start, "load_avg_1m_at_end": os.getloadavg()[0],
           "rows": rows, "cases": {f"{r['preset']}_{r['num_classes']}": r for r in rows}}
    print(f"threads {args.threads}; 1-min load average {load_start:.2f} at start, "
          f"{out['load_avg_1m_at_end']:.2f} at end")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
