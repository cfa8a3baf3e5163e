"""Pre-training step throughput at the iNat2018 preset, XLA on vs off, against a plain chain of
matmuls of the same shapes timed in the same run.

Setup (issue "csp_tf core"): gridcell, S = 32, radii 0.1–360°, one 512-wide hidden layer,
256-d embedding, batch 1024, 2048-d image features, K = 1 random negative location, SimCSE on
(three location-encoder passes per step). The batch is fixed and in memory, so the figure is
the step itself, not the input pipeline.

The matmul chain contains every matmul of the step's forward and backward pass, with the
same shapes, and nothing else; its FLOP count is the "useful work" of one step. The ratio
``matmul-chain time / step time`` is the fraction of matmul-bound speed the whole step
reaches (1.0 = the step costs no more than its matmuls).

    python benchmarks/train_step.py [--steps 20] [--batch 1024] [--out result.json]
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
from csp_tf.train.steps import TrainStep, make_pretrain_loss, pretrain_variables  # noqa: E402

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


def pretrain_step(batch: int, feature_dim: int, jit: bool):
    cfg = get_preset("inat2018")
    cfg.data.num_classes, cfg.data.feature_dim = 10, feature_dim
    cfg.runtime.jit_compile = "on" if jit else "off"
    model = build_csp_model(cfg)
    opt = make_optimizer(cfg.pretrain.lr, "float32")
    variables = pretrain_variables(model)
    opt.build(variables)
    step = TrainStep(make_pretrain_loss(model, cfg.pretrain), opt, variables,
                     tf.distribute.get_strategy(), seed=0, stage_salt=1, jit_compile=jit)
    rng = np.random.default_rng(0)
    data = {"lon_lat": tf.constant(np.stack([rng.uniform(-180, 180, batch),
                                             rng.uniform(-90, 90, batch)], 1), tf.float32),
            "image_features": tf.constant(rng.standard_normal((batch, feature_dim)), tf.float32)}
    counter = iter(range(10 ** 9))
    return lambda: step(data, next(counter)), cfg


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(steps: int, batch: int, feature_dim: int) -> Dict:
    cfg = get_preset("inat2018")
    le, pc = cfg.location_encoder, cfg.pretrain
    shapes = step_matmul_shapes(batch, le.position.frequency_num, le.hidden_dim, le.num_filts,
                                feature_dim, pc.num_neg_rand_loc)
    step_flops = flops(shapes)
    results: Dict = {"setup": {"batch": batch, "feature_dim": feature_dim, "steps": steps,
                               "frequency_num": le.position.frequency_num,
                               "hidden_dim": le.hidden_dim, "num_filts": le.num_filts,
                               "num_neg_rand_loc": pc.num_neg_rand_loc, "simcse": True,
                               "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                               "cpu_count": os.cpu_count(), "machine": platform.machine(),
                               "tensorflow": tf.__version__},
                     "step_gflop": step_flops / 1e9}
    for jit in (False, True):
        name = "xla_on" if jit else "xla_off"
        chain_s = time_fn(matmul_chain(shapes, jit), steps)
        fn, _ = pretrain_step(batch, feature_dim, jit)
        step_s = time_fn(fn, steps)
        results[name] = {
            "step_ms": 1e3 * step_s, "steps_per_s": 1.0 / step_s, "examples_per_s": batch / step_s,
            "step_gflops": step_flops / step_s / 1e9, "matmul_chain_ms": 1e3 * chain_s,
            "matmul_chain_gflops": step_flops / chain_s / 1e9,
            "ratio_to_matmul_chain": chain_s / step_s,
        }
        print(f"[{name}] step {1e3 * step_s:7.1f} ms  {batch / step_s:8.0f} ex/s  "
              f"{step_flops / step_s / 1e9:6.1f} GFLOP/s | matmul chain {1e3 * chain_s:7.1f} ms "
              f"{step_flops / chain_s / 1e9:6.1f} GFLOP/s | ratio {chain_s / step_s:.2f}", flush=True)
    results["xla_speedup"] = results["xla_off"]["step_ms"] / results["xla_on"]["step_ms"]
    # Against the faster of the two chains, so neither mode gets an easy baseline.
    best_chain = min(results[m]["matmul_chain_ms"] for m in ("xla_off", "xla_on"))
    for m in ("xla_off", "xla_on"):
        results[m]["ratio_to_best_matmul_chain"] = best_chain / results[m]["step_ms"]
    results["peak_rss_mb"] = peak_rss_mb()
    if tf.config.list_physical_devices("GPU"):
        results["peak_gpu_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
    print(f"ratio to the faster matmul chain: XLA off {results['xla_off']['ratio_to_best_matmul_chain']:.2f}, "
          f"XLA on {results['xla_on']['ratio_to_best_matmul_chain']:.2f}")
    print(f"XLA speed-up on the step: {results['xla_speedup']:.2f}x; peak RSS "
          f"{results['peak_rss_mb']:.0f} MB")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--feature-dim", type=int, default=2048)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    results = run(args.steps, args.batch, args.feature_dim)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
