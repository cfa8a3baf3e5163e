"""Pre-training step throughput at the iNat2018 preset (fp32/bf16 × XLA on/off), as a fraction
of the machine's fp32 GEMM peak measured in the same run.

Setup (issue "csp_tf core"): gridcell, S = 32, radii 0.1–360°, one 512-wide hidden layer,
256-d embedding, batch 1024, 2048-d image features, K = 1 random negative location, SimCSE on
(three location-encoder passes per step). The batch is fixed and in memory, so the figure is
the step itself, not the input pipeline.

The matmul chain contains every matmul of the step's forward and backward pass, with the
same shapes, and nothing else; its FLOP count is the "useful work" of one step. The ratio
``matmul-chain time / step time`` is the fraction of matmul-bound speed the whole step
reaches (1.0 = the step costs no more than its matmuls).

The GEMM peak is the best of numpy and tf.linalg.matmul on 2048² and on the step's own
shapes (``gemm_peak``); the step's GFLOP/s count the FLOPs of ``step_matmul_shapes`` only.
The reference PyTorch step is timed side by side with the fp32 row by
``benchmarks/step_vs_reference.py --reference-cmd CMD`` (the reference's own timing command).

The fine-tuning step (``presence`` loss, 1024 labeled + 1024 random rows, C = 8142 classes)
and evaluation throughput (``csp_tf.evaluate.predict_arrays``: location + image classifier,
rows/s) are timed in the same rounds, against the same GEMM peak; ``*_spe4`` rows run four steps
per ``tf.function`` call (``runtime.steps_per_execution=4``).

    python benchmarks/train_step.py [--steps 20] [--rounds 3] [--batch 1024] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from typing import Dict, List, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from csp_tf.configs import get_preset  # noqa: E402
from csp_tf.models import build_csp_model  # noqa: E402
from csp_tf.train.stages import make_optimizer  # noqa: E402
from csp_tf.train.steps import (TrainStep, finetune_variables, make_finetune_loss,  # noqa: E402
                                make_pretrain_loss, pretrain_variables)

Shape = Tuple[int, int, int]  # (M, K, N): [M, K] @ [K, N]


def step_matmul_shapes(b: int, s: int, h: int, d: int, f: int, k: int) -> List[Shape]:
    """Forward + backward matmuls of one contsoftmax step (3 location passes: real, K·B
    random, SimCSE positive; img_dec; two B×B similarity matrices; backward: dX and dW for
    every layer except dX of the position features and of the raw image features)."""
    shapes: List[Shape] = []
    for rows in (b, k * b, b):  # the three location-encoder passes
        shapes += [(rows, 4 * s, h), (rows, h, d)]  # forward
        shapes += [(4 * s, rows, h)]  # dW1 (no dX: the position features are constants)
        shapes += [(rows, d, h), (h, rows, d)]  # dX2, dW2
    shapes += [(b, f, d), (f, b, d)]  # img_dec forward, dW
    for _ in range(2):  # e·vᵀ and e·e⁺ᵀ: forward, then the gradient w.r.t. each operand
        shapes += [(b, d, b), (b, b, d), (b, b, d)]
    return shapes


def flops(shapes: List[Shape]) -> float:
    return float(sum(2 * m * k_ * n for m, k_, n in shapes))


def time_fn(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        out = fn()
    _block(out)
    t0 = time.perf_counter()
    for _ in range(steps):
        out = fn()
    _block(out)
    return (time.perf_counter() - t0) / steps


def _block(out) -> None:
    for t in tf.nest.flatten(out):
        if hasattr(t, "numpy"):
            t.numpy()


def matmul_chain(shapes: List[Shape], jit: bool):
    rng = np.random.default_rng(0)
    pairs = [(tf.constant(rng.standard_normal((m, k_)), tf.float32),
              tf.constant(rng.standard_normal((k_, n)), tf.float32)) for m, k_, n in shapes]

    @tf.function(jit_compile=jit)
    def run():
        # Sum one element of each product so nothing is pruned and the chain is sequential work.
        acc = tf.constant(0.0)
        for a, b_ in pairs:
            acc += tf.matmul(a, b_)[0, 0]
        return acc

    return run


def merged_step_matmul_shapes(b: int, s: int, h: int, d: int, f: int, k: int) -> List[Shape]:
    """The same FLOPs as ``step_matmul_shapes`` in the shapes the step runs now: one
    location-encoder call on the (2 + K)·B concatenated rows (real, random, positive)."""
    rows = (2 + k) * b
    shapes: List[Shape] = [(rows, 4 * s, h), (rows, h, d), (4 * s, rows, h), (rows, d, h), (h, rows, d)]
    shapes += [(b, f, d), (f, b, d)]
    for _ in range(2):
        shapes += [(b, d, b), (b, b, d), (b, b, d)]
    return shapes


def _best_seconds(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_peak(shapes: List[Shape], reps: int = 5) -> Dict[str, float]:
    """The machine's fp32 GEMM rate (GFLOP/s), best of numpy (its BLAS) and tf.linalg.matmul
    (oneDNN), on 2048² and on the step's own matmul shapes (total FLOPs / sum of each distinct
    shape's best time, every shape weighted by how often the step runs it). Also the bf16 rate of
    tf.linalg.matmul on 2048², for the bf16 rows."""
    rng = np.random.default_rng(0)
    out: Dict[str, float] = {}
    n = 2048
    a, b_ = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
    out["numpy_2048"] = 2 * n ** 3 / _best_seconds(lambda: a @ b_, reps) / 1e9
    ta, tb = tf.constant(a), tf.constant(b_)
    mm = tf.function(lambda x, y: tf.linalg.matmul(x, y)[0, 0])
    out["tf_2048"] = 2 * n ** 3 / _best_seconds(lambda: mm(ta, tb).numpy(), reps) / 1e9
    ha, hb = tf.cast(ta, tf.bfloat16), tf.cast(tb, tf.bfloat16)
    out["tf_bf16_2048"] = 2 * n ** 3 / _best_seconds(lambda: mm(ha, hb).numpy(), reps) / 1e9
    counts: Dict[Shape, int] = {}
    for sh in shapes:
        counts[sh] = counts.get(sh, 0) + 1
    t_np = t_tf = 0.0
    for (m, k_, n_), c in counts.items():
        x = rng.standard_normal((m, k_)).astype(np.float32)
        y = rng.standard_normal((k_, n_)).astype(np.float32)
        t_np += c * _best_seconds(lambda: x @ y, reps)
        tx, ty = tf.constant(x), tf.constant(y)
        t_tf += c * _best_seconds(lambda: mm(tx, ty).numpy(), reps)
    total = flops(shapes)
    out["numpy_step_shapes"] = total / t_np / 1e9
    out["tf_step_shapes"] = total / t_tf / 1e9
    out["peak_gflops"] = max(out["numpy_2048"], out["tf_2048"], out["numpy_step_shapes"],
                             out["tf_step_shapes"])
    return out


def pretrain_step(batch: int, feature_dim: int, jit: bool, precision: str = "float32",
                  merge_passes: bool = True, spe: int = 1):
    import keras
    cfg = get_preset("inat2018")
    cfg.data.num_classes, cfg.data.feature_dim = 10, feature_dim
    cfg.runtime.jit_compile = "on" if jit else "off"
    policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = build_csp_model(cfg)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    opt = make_optimizer(cfg.pretrain.lr, policy)
    variables = pretrain_variables(model)
    opt.build(variables)
    step = TrainStep(make_pretrain_loss(model, cfg.pretrain, merge_passes=merge_passes), opt,
                     variables, tf.distribute.get_strategy(), seed=0, stage_salt=1, jit_compile=jit)
    rng = np.random.default_rng(0)
    data = {"lon_lat": tf.constant(np.stack([rng.uniform(-180, 180, batch),
                                             rng.uniform(-90, 90, batch)], 1), tf.float32),
            "image_features": tf.constant(rng.standard_normal((batch, feature_dim)), tf.float32)}
    return _stepper(step, data, spe), cfg


def _stepper(step: TrainStep, data, spe: int):
    """One call of ``spe`` steps (``runtime.steps_per_execution``) on the same in-memory batch."""
    counter = iter(range(0, 10 ** 9, spe))
    if spe == 1:
        return lambda: step(data, next(counter))
    return lambda: step.run([data] * spe, next(counter))


def finetune_matmul_shapes(b: int, s: int, h: int, d: int, c: int) -> List[Shape]:
    """Forward + backward matmuls of one ``presence`` fine-tuning step: one location-encoder
    call on the 2B rows [x; x̃] up to the C-way class head (dX of the position features and
    dW/dX of nothing else)."""
    r = 2 * b
    return [(r, 4 * s, h), (r, h, d), (r, d, c),  # forward
            (4 * s, r, h), (r, d, h), (h, r, d), (r, c, d), (d, r, c)]  # dW1, dX2, dW2, dXc, dWc


def eval_matmul_shapes(n: int, s: int, h: int, d: int, f: int, c: int) -> List[Shape]:
    """Matmuls of ``predict_all`` on n rows: location encoder + class head, image classifier."""
    return [(n, 4 * s, h), (n, h, d), (n, d, c), (n, f, c)]


def finetune_step(batch: int, feature_dim: int, classes: int, jit: bool, spe: int = 1):
    cfg = get_preset("inat2018")
    cfg.data.num_classes, cfg.data.feature_dim = classes, feature_dim
    model = build_csp_model(cfg)
    opt = make_optimizer(cfg.finetune.lr, "float32")
    variables = finetune_variables(model)
    opt.build(variables)
    step = TrainStep(make_finetune_loss(model, cfg.finetune), opt, variables,
                     tf.distribute.get_strategy(), seed=0, stage_salt=2, jit_compile=jit)
    rng = np.random.default_rng(1)
    data = {"lon_lat": tf.constant(np.stack([rng.uniform(-180, 180, batch),
                                             rng.uniform(-90, 90, batch)], 1), tf.float32),
            "label": tf.constant(rng.integers(0, classes, batch), tf.int64)}
    return _stepper(step, data, spe)


def eval_fn(rows: int, feature_dim: int, classes: int, batch_size: int):
    """``csp_tf.evaluate.predict_arrays`` over ``rows`` in-memory rows (the evaluation and
    embedding path), at ``batch_size`` rows per call."""
    from csp_tf.evaluate import predict_arrays

    cfg = get_preset("inat2018")
    cfg.data.num_classes, cfg.data.feature_dim = classes, feature_dim
    model = build_csp_model(cfg)
    rng = np.random.default_rng(2)
    x = np.stack([rng.uniform(-180, 180, rows), rng.uniform(-90, 90, rows)], 1).astype(np.float32)
    f = rng.standard_normal((rows, feature_dim)).astype(np.float32)
    return lambda: predict_arrays(model, x, f, batch_size=batch_size)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# Pre-training modes: (name, precision, XLA, merged passes, steps per tf.function call).
# "fp32_xla_off_per_pass" is the earlier step structure (one location-encoder call per
# pass), timed in the same run for comparison.
MODES = (("fp32_xla_off", "float32", False, True, 1), ("fp32_xla_on", "float32", True, True, 1),
         ("bf16_xla_off", "bfloat16", False, True, 1), ("bf16_xla_on", "bfloat16", True, True, 1),
         ("fp32_xla_off_per_pass", "float32", False, False, 1),
         ("fp32_xla_off_spe4", "float32", False, True, 4))
# Fine-tuning step (presence loss, iNat2018 preset, fp32): (name, XLA, steps per call).
FINETUNE_MODES = (("finetune_fp32_xla_off", False, 1), ("finetune_fp32_xla_off_spe4", False, 4))
# Evaluation / embedding throughput (predict_arrays): (name, rows per call).
EVAL_MODES = (("eval_batch4096", 4096), ("eval_batch16384", 16384))
ALL_MODES = tuple(m[0] for m in MODES + FINETUNE_MODES + EVAL_MODES)


def run(steps: int, batch: int, feature_dim: int, rounds: int = 3,
        modes: Tuple[str, ...] = ALL_MODES, classes: int = 8142, eval_rows: int = 16384) -> Dict:
    cfg = get_preset("inat2018")
    le, pc = cfg.location_encoder, cfg.pretrain
    s_, h_, d_ = le.position.frequency_num, le.hidden_dim, le.num_filts
    dims = (batch, s_, h_, d_, feature_dim, pc.num_neg_rand_loc)
    shapes = step_matmul_shapes(*dims)
    step_flops = flops(shapes)
    ft_batch = cfg.finetune.batch_size
    ft_flops = flops(finetune_matmul_shapes(ft_batch, s_, h_, d_, classes))
    eval_flops = flops(eval_matmul_shapes(eval_rows, s_, h_, d_, feature_dim, classes))
    results: Dict = {"setup": {"batch": batch, "feature_dim": feature_dim, "steps": steps,
                               "rounds": rounds,
                               "frequency_num": s_, "hidden_dim": h_, "num_filts": d_,
                               "num_neg_rand_loc": pc.num_neg_rand_loc, "simcse": True,
                               "finetune_batch": ft_batch, "classes": classes,
                               "eval_rows": eval_rows,
                               "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                               "cpu_count": os.cpu_count(), "machine": platform.machine(),
                               "tensorflow": tf.__version__,
                               "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
                     "step_gflop": step_flops / 1e9, "finetune_step_gflop": ft_flops / 1e9,
                     "eval_gflop": eval_flops / 1e9,
                     "reference_external": {
                         "step_ms": "120-130", "source": "the authors' PyTorch reference code, timed outside "
                         "csp-tf on the same 2-core machine kind, idle (earlier figure; "
                         "benchmarks/step_vs_reference.py measures it side by side)"}}
    if "fp32_xla_off" in modes or "fp32_xla_on" in modes:
        # The fp32 matmul chain of the step's own shapes, XLA off and on: what XLA's CPU GEMM
        # costs against oneDNN's.
        for jit in (False, True):
            chain_s = time_fn(matmul_chain(shapes, jit), steps)
            results[f"matmul_chain_xla_{'on' if jit else 'off'}_ms"] = 1e3 * chain_s
    # Every mode and the GEMM peak are timed in `rounds` interleaved rounds and the best round
    # counts: on a shared machine the best round is the one least slowed by other processes.
    # Each entry: (fn, calls per round, steps (or rows) per call, FLOPs per step, batch rows).
    fns: Dict[str, tuple] = {}
    for name, precision, jit, merged, spe in MODES:
        if name in modes:
            fns[name] = (pretrain_step(batch, feature_dim, jit, precision, merged, spe)[0],
                         max(1, steps // spe), spe, step_flops, batch)
    for name, jit, spe in FINETUNE_MODES:
        if name in modes:
            fns[name] = (finetune_step(ft_batch, feature_dim, classes, jit, spe),
                         max(1, steps // spe), spe, ft_flops, ft_batch)
    for name, eval_batch in EVAL_MODES:
        if name in modes:
            fns[name] = (eval_fn(eval_rows, feature_dim, classes, eval_batch),
                         max(1, steps // 10), 1, eval_flops, eval_rows)
    times: Dict[str, List[float]] = {m: [] for m in fns}
    peaks: List[Dict[str, float]] = []
    step_shapes = shapes + merged_step_matmul_shapes(*dims)
    for r in range(rounds):
        peaks.append(gemm_peak(step_shapes))
        for name, (fn, calls, per_call, _, _) in fns.items():
            times[name].append(time_fn(fn, calls, warmup=2 if r == 0 else 1) / per_call)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m} {1e3 * t[-1]:.1f} ms" for m, t in times.items())
              + f"; GEMM peak {peaks[-1]['peak_gflops']:.0f} GFLOP/s; load {os.getloadavg()[0]:.2f}",
              flush=True)
    peak = {k: max(p[k] for p in peaks) for k in peaks[0]}
    results["gemm_peak"] = peak
    for name, ts in times.items():
        _, _, spe, work, rows = fns[name]
        step_s = min(ts)
        gflops = work / step_s / 1e9
        row = {"step_ms": 1e3 * step_s, "step_ms_median": 1e3 * float(np.median(ts)),
               "steps_per_s": 1.0 / step_s, "examples_per_s": rows / step_s,
               "step_gflops": gflops, "fraction_of_fp32_gemm_peak": gflops / peak["peak_gflops"],
               "steps_per_execution": spe}
        if name.startswith("bf16"):
            row["fraction_of_bf16_gemm_2048"] = gflops / peak["tf_bf16_2048"]
        if name in ("fp32_xla_off", "fp32_xla_on"):
            chain_ms = results[f"matmul_chain_{name[5:]}_ms"]
            row["matmul_chain_ms"] = chain_ms
            row["ratio_to_matmul_chain"] = chain_ms / row["step_ms"]
        results[name] = row
        print(f"[{name:26s}] {'call' if name.startswith('eval') else 'step'} "
              f"{row['step_ms']:7.1f} ms (median {row['step_ms_median']:.1f})  "
              f"{row['examples_per_s']:8.0f} rows/s  {gflops:6.1f} GFLOP/s = "
              f"{100 * row['fraction_of_fp32_gemm_peak']:.0f} % of the fp32 GEMM peak", flush=True)
    # Aliases of the fp32 rows under the first version's keys.
    for m in ("xla_off", "xla_on"):
        if f"fp32_{m}" in results:
            results[m] = results[f"fp32_{m}"]
    if "xla_off" in results and "xla_on" in results:
        results["xla_speedup"] = results["xla_off"]["step_ms"] / results["xla_on"]["step_ms"]
    for a, b, key in (("fp32_xla_off_per_pass", "fp32_xla_off", "merged_speedup_xla_off"),
                      ("fp32_xla_off", "fp32_xla_off_spe4", "spe4_speedup_xla_off"),
                      ("finetune_fp32_xla_off", "finetune_fp32_xla_off_spe4", "finetune_spe4_speedup"),
                      ("eval_batch4096", "eval_batch16384", "eval_batch16384_speedup")):
        if a in results and b in results:
            results[key] = results[a]["step_ms"] / results[b]["step_ms"]
    results["setup"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["peak_rss_mb"] = peak_rss_mb()
    if tf.config.list_physical_devices("GPU"):
        results["peak_gpu_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
    print("GEMM peak (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB; load {results['setup']['load_avg_1m_at_start']} "
          f"-> {results['setup']['load_avg_1m_at_end']}")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--feature-dim", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    p.add_argument("--classes", type=int, default=8142,
                   help="class count of the fine-tuning and evaluation rows (iNat2018: 8142)")
    p.add_argument("--eval-rows", type=int, default=16384)
    p.add_argument("--modes", default=",".join(ALL_MODES),
                   help="comma-separated subset of " + ", ".join(ALL_MODES))
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    results = run(args.steps, args.batch, args.feature_dim, args.rounds,
                  tuple(args.modes.split(",")), args.classes, args.eval_rows)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
