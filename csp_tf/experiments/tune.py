"""``csp-tf tune``: a small, budgeted random search on the ``val`` split (never ``test``).

Each trial is one protocol cell (method × label ratio × seed) whose base config carries the
trial's overrides, evaluated on ``val``; ``tune.csv`` records every trial and ``best.yaml`` is the
base config with the best trial's overrides, ready for ``csp-tf experiment --config best.yaml``.
Trial 0 is always the base config itself, so the search can only keep or improve it on val.
"""

from __future__ import annotations

import csv
import json
import os
import random
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from csp_tf.configs import ExperimentConfig

Echo = Callable[[str], None]

# What matters most for a location prior (issue: min_radius, lr, steps, dropout, width, τ mode).
# More labels want a finer finest scale and more updates (docs/results.md, per-ratio picks on
# places: 0.25° and 30 epochs at 100 %, 4000 steps at 20 %), fewer labels a coarser one and
# fewer updates (2° and 750 steps at 1 %), so the space reaches both ends.
SEARCH_SPACE: Dict[str, Sequence[Any]] = {
    "location_encoder.position.min_radius": (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
    "finetune.lr": (3e-4, 1e-3, 3e-3),
    "finetune.min_steps": (750, 1500, 3000, 6000),
    "finetune.epochs": (10, 30),
    "location_encoder.dropout": (0.0, 0.1, 0.3, 0.5),
    "location_encoder.hidden_dim": (256, 512),
}
PRETRAIN_SPACE: Dict[str, Sequence[Any]] = {
    "pretrain.temperature_mode": ("divide", "multiply"),
    "pretrain.temp_inbatch": (1.0, 20.0),
}


def sample_trials(budget: int, seed: int, pretrains: bool,
                  space: Optional[Mapping[str, Sequence[Any]]] = None) -> List[Dict[str, Any]]:
    """``budget`` trials: {} (the base config) then distinct random points of the space."""
    space = dict(space or SEARCH_SPACE)
    if pretrains and not any(k.startswith("pretrain.") for k in space):
        space.update(PRETRAIN_SPACE)
    rng = random.Random(seed)
    trials: List[Dict[str, Any]] = [{}]
    seen = set()
    attempts = 0
    while len(trials) < budget and attempts < 100 * budget:
        attempts += 1
        t = {k: rng.choice(list(v)) for k, v in sorted(space.items())}
        key = json.dumps(t, sort_keys=True)
        if key not in seen:
            seen.add(key)
            trials.append(t)
    return trials


def run_tune(data_root: str, out_dir: str, base: ExperimentConfig, method_name: str,
             ratio: float, budget: int, seed: int = 0, objective: str = "fused",
             echo: Echo = print) -> Dict[str, Any]:
    """Runs the trials; returns {"best": trial, "trials": rows} and writes tune.csv/best.yaml."""
    from csp_tf.experiments.methods import get_method
    from csp_tf.experiments.protocol import Protocol, run_protocol

    method = get_method(method_name)
    if method.baseline:
        raise ValueError(f"{method_name} is a scikit-learn baseline; it tunes itself on val")
    if objective not in ("fused", "location"):
        raise ValueError(f"objective={objective!r} is not 'fused' or 'location'")
    os.makedirs(out_dir, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    trials = sample_trials(budget, seed, method.pretrains)
    for i, overrides in enumerate(trials):
        cfg = base.override(overrides) if overrides else base.copy()
        p = Protocol(data_root=data_root, out_dir=os.path.join(out_dir, f"trial{i:03d}"),
                     base_config=cfg, methods=[method], ratios=[ratio], seeds=[seed],
                     split="val", config_name=f"trial {i}")
        result = run_protocol(p, echo=lambda _: None)[0]
        row = {"trial": i, "overrides": json.dumps(overrides, sort_keys=True),
               "val_top1": float(result["top1"]),
               "val_location_top1": float(result["location_top1"]),
               "seconds": float(result["finetune_s"]) + (float(result["pretrain_s"])
                                                         if method.pretrains else 0.0)}
        rows.append(row)
        echo(f"[trial {i + 1}/{len(trials)}] {method_name} ratio={ratio:g}: val top1 "
             f"{row['val_top1']:.2f} | location {row['val_location_top1']:.2f} | {overrides or 'base config'}")
        _write(out_dir, rows)
    key = "val_top1" if objective == "fused" else "val_location_top1"
    best = max(rows, key=lambda r: (r[key], -r["trial"]))
    best_cfg = base.override(json.loads(best["overrides"])) if best["overrides"] != "{}" else base
    best_cfg.save(os.path.join(out_dir, "best.yaml"))
    with open(os.path.join(out_dir, "best.json"), "w") as f:
        json.dump({"method": method_name, "ratio": ratio, "seed": seed, "objective": objective,
                   "split": "val", "best": best}, f, indent=2)
    echo(f"tune: best trial {best['trial']} (val {key} {best[key]:.2f}); wrote "
         f"{os.path.join(out_dir, 'best.yaml')} and tune.csv")
    return {"best": best, "trials": rows}


def _write(out_dir: str, rows: List[Dict[str, Any]]) -> None:
    path = os.path.join(out_dir, "tune.csv")
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(path + ".tmp", path)
