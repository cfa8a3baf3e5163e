"""fp32 vs mixed bf16 (``runtime.mixed_precision=bfloat16``) on the generated demo world:
pre-training loss per epoch and downstream test top-1 (location-only and fused) of
CSP-MC-BLD at 5 % labels, same seed per pair, several seeds.

Each cell is one ``csp-tf experiment`` run (demo preset, XLA off, fine-tuning at least 300
steps); a cell whose ``results.csv`` exists is read, not re-run. Writes ``OUT/bf16_accuracy.json`` and the loss
curves as ``--plot`` (PNG).

    python benchmarks/bf16_accuracy.py --out runs/bf16 [--seeds 0,1,2] [--plot docs/bf16_loss.png]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from typing import Dict, List

PRECISIONS = ("off", "bfloat16")  # off = float32


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(cmd: List[str], log: str) -> None:
    # This checkout's csp_tf, not whichever one the interpreter's install points at.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p))
    with open(log, "w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)


def run_cells(out: str, seeds: List[int], ratio: float, min_steps: int) -> Dict:
    cli = [sys.executable, "-m", "csp_cli"]
    world = os.path.join(out, "world")
    if not os.path.exists(os.path.join(world, "data", "metadata.json")):
        _run(cli + ["generate", "--out", world, "--ingest", "--in-process", "--num-shards", "1"],
             os.path.join(out, "generate.log"))
    results: Dict = {"ratio": ratio, "finetune_min_steps": min_steps, "cells": []}
    for seed in seeds:
        for prec in PRECISIONS:
            exp = os.path.join(out, f"exp_{prec}_s{seed}")
            if not os.path.exists(os.path.join(exp, "results.csv")):
                _run(cli + ["experiment", "--data-root", os.path.join(world, "data"),
                            "--out", exp, "--methods", "csp", "--ratios", str(ratio),
                            "--seeds", str(seed), "--no-baselines",
                            "--set", f"runtime.mixed_precision={prec}",
                            "--set", "runtime.jit_compile=off",
                            "--set", f"finetune.min_steps={min_steps}",
                            "--set", "runtime.progress=false"], exp + ".log")
            row = next(csv.DictReader(open(os.path.join(exp, "results.csv"))))
            hist = json.load(open(os.path.join(exp, "pretrain", "csp", f"seed{seed}", "history.json")))
            results["cells"].append({
                "seed": seed, "precision": "fp32" if prec == "off" else "bf16",
                "pretrain_loss": [h["loss"] for h in hist],
                "location_top1": float(row["location_top1"]), "fused_top1": float(row["fused_top1"]),
                "pretrain_s": float(row["pretrain_s"]), "finetune_s": float(row["finetune_s"])})
    return results


def plot(results: Dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for cell in results["cells"]:
        style = "-" if cell["precision"] == "fp32" else "--"
        ax.plot(range(1, len(cell["pretrain_loss"]) + 1), cell["pretrain_loss"], style,
                label=f"{cell['precision']} seed {cell['seed']}")
    ax.set_xlabel("pre-training epoch")
    ax.set_ylabel("pre-training loss (contsoftmax, epoch mean)")
    ax.set_title("demo world: fp32 vs mixed bf16")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ratio", type=float, default=0.05)
    p.add_argument("--min-steps", type=int, default=300)
    p.add_argument("--plot", help="write the loss curves here (PNG)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results = run_cells(args.out, [int(s) for s in args.seeds.split(",")], args.ratio,
                        args.min_steps)
    with open(os.path.join(args.out, "bf16_accuracy.json"), "w") as f:
        json.dump(results, f, indent=2)
    for c in results["cells"]:
        print(f"seed {c['seed']} {c['precision']}: loss {' '.join(f'{v:.4f}' for v in c['pretrain_loss'])}"
              f" | location top-1 {c['location_top1']:.2f} fused top-1 {c['fused_top1']:.2f}")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
