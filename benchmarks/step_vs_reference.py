"""The fp32 pre-training step against a reference implementation's step and against the fp32
GEMM peak, all measured side by side in one run.

Our step is ``train_step.py``'s fp32 pre-train row (iNat2018 preset: gridcell S = 32, 1 × 512
hidden, 256-d embedding, batch 1024, 2048-d image features, K = 1 random location, SimCSE on;
forward + backward + Adam). The reference is any command, given as a string, that times the same
workload and prints a JSON line holding ``"ms_per_step"`` (its best figure); csp-tf ships no
reference code. Rounds interleave reference, ours and the GEMM peak (ref, ours, ref, ours, …) so
that a shared machine slows both sides alike; the best round of each counts.

Prints, and writes with ``--out``: our ms/step, the reference's, the speed-up (reference / ours),
our fraction of the GEMM peak (step matmul GFLOP/s ÷ peak GFLOP/s) and the 1-minute load
average at the start and the end (near 0 on an idle machine).

    python benchmarks/step_vs_reference.py --reference-cmd "python time_ref_step.py" \
        [--rounds 3] [--steps 20] [--mode fp32_xla_on] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# fp32 modes of train_step.py this script can time: name -> XLA on.
FP32_MODES = {"fp32_xla_on": True, "fp32_xla_off": False}


def parse_reference_ms(stdout: str) -> float:
    """``ms_per_step`` of the last JSON object line in the reference command's output."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line).get("ms_per_step")
            except json.JSONDecodeError:
                continue
            if isinstance(value, (int, float)) and value > 0:
                return float(value)
    raise ValueError("the reference command printed no JSON line with a positive 'ms_per_step'")


def summarize(ours_ms: Sequence[float], ref_ms: Sequence[float], peaks_gflops: Sequence[float],
              step_gflop: float) -> Dict[str, float]:
    """Best round of each side (lowest time, highest peak) and the two ratios the goal names:
    ``speedup_vs_reference`` = reference / ours and ``fraction_of_gemm_peak`` = our step's matmul
    GFLOP/s / the GEMM peak."""
    ours, peak = min(ours_ms), max(peaks_gflops)
    out = {"ours_ms": ours, "ours_ms_median": _median(ours_ms), "gemm_peak_gflops": peak,
           "ours_gflops": step_gflop / (ours / 1e3),
           "fraction_of_gemm_peak": step_gflop / (ours / 1e3) / peak}
    if ref_ms:
        ref = min(ref_ms)
        out.update(reference_ms=ref, reference_ms_median=_median(ref_ms),
                   speedup_vs_reference=ref / ours)
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def run_reference(cmd: str, timeout_s: float = 1800.0) -> float:
    """Runs the user's reference command (a shell string) and returns its ms per step."""
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"reference command exited {proc.returncode}: {proc.stderr[-2000:]}")
    return parse_reference_ms(proc.stdout)


def run(reference_cmd: Optional[str], rounds: int, steps: int, batch: int, feature_dim: int,
        mode: str) -> Dict:
    import tensorflow as tf

    from csp_tf.configs import get_preset
    from train_step import (flops, gemm_peak, merged_step_matmul_shapes, pretrain_step,  # noqa: E402
                            step_matmul_shapes, time_fn)

    load_start = os.getloadavg()
    cfg = get_preset("inat2018")
    le, pc = cfg.location_encoder, cfg.pretrain
    dims = (batch, le.position.frequency_num, le.hidden_dim, le.num_filts, feature_dim,
            pc.num_neg_rand_loc)
    shapes = step_matmul_shapes(*dims)
    step_gflop = flops(shapes) / 1e9
    ours_fn = pretrain_step(batch, feature_dim, FP32_MODES[mode], "float32")[0]
    ours_ms: List[float] = []
    ref_ms: List[float] = []
    peaks: List[float] = []
    for r in range(rounds):
        if reference_cmd:
            ref_ms.append(run_reference(reference_cmd))
        ours_ms.append(1e3 * time_fn(ours_fn, steps, warmup=3 if r == 0 else 1))
        peaks.append(gemm_peak(shapes + merged_step_matmul_shapes(*dims))["peak_gflops"])
        print(f"round {r + 1}/{rounds}: "
              + (f"reference {ref_ms[-1]:.1f} ms, " if ref_ms else "")
              + f"ours ({mode}) {ours_ms[-1]:.1f} ms, GEMM peak {peaks[-1]:.0f} GFLOP/s, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    load_end = os.getloadavg()
    summary = summarize(ours_ms, ref_ms, peaks, step_gflop)
    return {"setup": {"mode": mode, "batch": batch, "feature_dim": feature_dim, "steps": steps,
                      "rounds": rounds, "step_gflop": step_gflop, "reference_cmd": reference_cmd,
                      "cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
                      "load_avg_start": [round(x, 2) for x in load_start],
                      "load_avg_end": [round(x, 2) for x in load_end]},
            "rounds": {"ours_ms": ours_ms, "reference_ms": ref_ms, "gemm_peak_gflops": peaks},
            **summary}


def report(res: Dict) -> str:
    s = res["setup"]
    lines = [f"ours ({s['mode']}): {res['ours_ms']:.1f} ms/step (median {res['ours_ms_median']:.1f}), "
             f"{res['ours_gflops']:.0f} GFLOP/s = {res['fraction_of_gemm_peak']:.2f} of the fp32 GEMM "
             f"peak ({res['gemm_peak_gflops']:.0f} GFLOP/s, same run)"]
    if "reference_ms" in res:
        lines.append(f"reference: {res['reference_ms']:.1f} ms/step (median "
                     f"{res['reference_ms_median']:.1f}); speed-up reference/ours "
                     f"{res['speedup_vs_reference']:.2f}x")
    lines.append(f"load average (1, 5, 15 min): start {s['load_avg_start']}, end {s['load_avg_end']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference-cmd", help="shell command that times the reference step and prints "
                   "a JSON line with 'ms_per_step'; run once per round, interleaved with ours")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    p.add_argument("--steps", type=int, default=20, help="our steps per round")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--feature-dim", type=int, default=2048)
    p.add_argument("--mode", default="fp32_xla_on", choices=sorted(FP32_MODES))
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.reference_cmd:
        shlex.split(args.reference_cmd)  # fail early on an unbalanced quote
    res = run(args.reference_cmd, args.rounds, args.steps, args.batch, args.feature_dim, args.mode)
    print(report(res), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
