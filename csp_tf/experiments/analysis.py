"""Where a method's accuracy comes from: fused top-1 on the evaluation split, split by how many
labeled training examples each class had at the cell's label ratio.

Pre-training should matter most for the classes with one or two labels (the location prior
then has almost nothing to fit); this module measures that from the saved cells of an
experiment directory::

    python -m csp_tf.experiments.analysis --exp runs/exp --ratio 0.05 --methods sup_grid,csp
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

BINS: Tuple[Tuple[int, int], ...] = ((0, 2), (3, 5), (6, 20), (21, 10 ** 9))


def bin_label(lo: int, hi: int) -> str:
    if lo == 0:
        return f"<={hi}"
    return f"{lo}-{hi}" if hi < 10 ** 9 else f">={lo}"


def correct_by_class(model, arrays: Dict[str, np.ndarray], score: str = "probabilities") -> np.ndarray:
    """1.0 where the top-1 of ``score`` is the true class, per row."""
    from csp_tf.evaluate import predict_arrays, ranks_of_true_class

    out = predict_arrays(model, arrays["lon_lat"], arrays["image_features"])
    return (ranks_of_true_class(out[score].astype(np.float64), arrays["label"]) == 1).astype(float)


def accuracy_by_label_count(exp_dir: str, methods: Sequence[str], ratio: float,
                            seeds: Optional[Sequence[int]] = None) -> Dict[str, object]:
    """{"bins": [...], "rows_per_bin": [...], "classes_per_bin": [...],
    "methods": {name: {"mean": [...], "std": [...], "seeds": n}}}: fused top-1 (%) of the
    evaluation rows whose class had that many labels (Img. Only: P(y|img))."""
    from csp_tf.configs import ExperimentConfig
    from csp_tf.experiments.methods import get_method
    from csp_tf.experiments.protocol import Protocol
    from csp_tf.models.loading import load_csp_model
    from csp_tf.train.data_root import DataRoot

    with open(os.path.join(exp_dir, "protocol.json")) as f:
        info = json.load(f)
    seeds = list(seeds if seeds is not None else info["seeds"])
    base = ExperimentConfig.from_dict(info["base_config"])
    p = Protocol(info["data_root"], exp_dir, base, [], [ratio], seeds, info["split"])
    data = DataRoot.open(info["data_root"])
    ev = data.labeled(info["split"])
    n_labels = np.bincount(data.labeled("train", ratio)["label"], minlength=int(ev["label"].max()) + 1)
    row_bins = np.full(len(ev["label"]), -1)
    for b, (lo, hi) in enumerate(BINS):
        row_bins[(n_labels[ev["label"]] >= lo) & (n_labels[ev["label"]] <= hi)] = b
    result: Dict[str, object] = {
        "ratio": ratio, "bins": [bin_label(*b) for b in BINS],
        "rows_per_bin": [int((row_bins == b).sum()) for b in range(len(BINS))],
        "classes_per_bin": [int(((n_labels >= lo) & (n_labels <= hi)).sum()) for lo, hi in BINS],
        "methods": {}}
    for name in methods:
        method = get_method(name)
        per_seed = []
        for seed in seeds:
            cell = p.finetune_dir(method, ratio, seed)
            if not os.path.exists(os.path.join(cell, "model.keras")):
                continue
            # model.keras holds every trained weight, FCNet's residual blocks included
            # (perturbed-weight round trips in tests/csp_tf/test_models.py).
            model = load_csp_model(cell)
            score = "image_probabilities" if method.image_only else "probabilities"
            correct = correct_by_class(model, ev, score)
            per_seed.append([100.0 * correct[row_bins == b].mean() if (row_bins == b).any()
                             else float("nan") for b in range(len(BINS))])
        if per_seed:
            a = np.asarray(per_seed)
            result["methods"][name] = {  # type: ignore[index]
                "label": method.label, "mean": a.mean(axis=0).tolist(),
                "std": (a.std(axis=0, ddof=1) if len(a) > 1 else np.full(len(BINS), np.nan)).tolist(),
                "seeds": len(a)}
    return result


def to_markdown(result: Dict[str, object]) -> str:
    """The result as a markdown table: methods × label-count bins."""
    from csp_tf.experiments.results import markdown, mean_std

    rows = [["classes (val rows)"] + [f"{c} ({r})" for c, r in zip(
        result["classes_per_bin"], result["rows_per_bin"])]]  # type: ignore[call-overload]
    rows += [[f"{m['label']} (n={m['seeds']})"] + [mean_std(mu, sd) for mu, sd in zip(
        m["mean"], m["std"])] for m in result["methods"].values()]  # type: ignore[union-attr]
    bins = result["bins"]  # type: ignore[index]
    return markdown(["Method"] + [f"{b} labels" for b in bins], rows)  # type: ignore[union-attr]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exp", required=True, help="an experiment dir (with protocol.json)")
    ap.add_argument("--ratio", type=float, required=True)
    ap.add_argument("--methods", required=True, help="comma-separated method keys")
    ap.add_argument("--seeds", default=None, help="comma-separated (default: the experiment's)")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    result = accuracy_by_label_count(args.exp, [m for m in args.methods.split(",") if m],
                                     args.ratio, seeds)
    print(to_markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
