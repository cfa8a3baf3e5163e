"""Is a model's location-only top-1 really above (or below) a simple baseline's?

Seed means ± std say how much a result moves with the seed; they do not say whether a 0.05-point
gap to the kNN is more than the evaluation split can resolve (21 755 test places: one place is
0.005 points). This compares each fine-tuned cell with a location baseline (``knn_sphere`` or
``lr_sincos``, fitted on the cell's own label subset, chosen on val, as in ``experiment``) on the
*same* evaluation rows:

* ``a_only`` / ``b_only``: rows only the model / only the baseline gets right (top-1);
* ``p_value``: exact two-sided McNemar test on those discordant rows (binomial, p = 1/2);
* ``ci95``: 95 % interval of the paired difference in points (normal, over rows).

Read-only over finished experiment dirs: models are loaded from ``finetune/<method>/ratio<r>/
seed<s>/``, nothing is trained.
"""

from __future__ import annotations

import glob
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

Echo = Callable[[str], None]
ALPHA = 0.05
_CELL = re.compile(r"finetune/(?P<method>[^/]+)/ratio(?P<ratio>[0-9.e-]+)/seed(?P<seed>\d+)$")


@dataclass(frozen=True)
class PairedTest:
    """Two predictors scored on the same rows (a: the model, b: the baseline)."""

    n: int
    top1_a: float
    top1_b: float
    a_only: int
    b_only: int
    diff: float  # top1_a - top1_b, points
    ci95: Tuple[float, float]
    p_value: float

    @property
    def verdict(self) -> str:
        """``above`` / ``below`` where McNemar rejects equality at ``ALPHA``, else ``level``."""
        if self.p_value >= ALPHA:
            return "level"
        return "above" if self.diff > 0 else "below"


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p of ``k`` successes in ``n`` fair coin flips (McNemar's exact test)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)  # int / int: exact rounding, no overflow for large n


def paired_test(correct_a: np.ndarray, correct_b: np.ndarray) -> PairedTest:
    """McNemar and a paired 95 % interval for two boolean per-row correctness vectors."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal, non-empty 1-D vectors, got {a.shape} and {b.shape}")
    n = len(a)
    d = a.astype(np.float64) - b.astype(np.float64)
    half = 1.96 * 100.0 * d.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
    diff = 100.0 * d.mean()
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return PairedTest(n, 100.0 * a.mean(), 100.0 * b.mean(), a_only, b_only, diff,
                      (diff - half, diff + half), binomial_two_sided(a_only, a_only + b_only))


@dataclass(frozen=True)
class Cell:
    """One fine-tuned model of an experiment dir."""

    run: str
    method: str
    ratio: float
    seed: int
    path: str


def find_cells(run_dirs: Sequence[str], methods: Optional[Sequence[str]] = None,
               ratios: Optional[Sequence[float]] = None) -> List[Cell]:
    """Every ``finetune/<method>/ratio<r>/seed<s>`` holding a ``model.keras`` under ``run_dirs``,
    except image-only methods (``img_only``: its P(y|loc) head is never trained)."""
    from csp_tf.experiments.methods import METHODS

    image_only = {name for name, m in METHODS.items() if m.image_only}
    asked = sorted(set(methods or ()) & image_only)
    if asked:
        raise ValueError(f"--methods {','.join(asked)}: image-only, no location model to compare")
    cells = []
    for run in run_dirs:
        if not os.path.isdir(os.path.join(run, "finetune")):
            raise FileNotFoundError(f"{run}: no finetune/ directory; is it a `csp-tf experiment` "
                                    "output?")
        for model in sorted(glob.glob(os.path.join(run, "finetune", "*", "ratio*", "seed*",
                                                   "model.keras"))):
            m = _CELL.search(os.path.dirname(model).replace(os.sep, "/"))
            if m is None:
                continue
            ratio = float(m["ratio"])
            if m["method"] in image_only or (methods and m["method"] not in methods) or \
                    (ratios and not any(abs(ratio - r) < 1e-9 for r in ratios)):
                continue
            cells.append(Cell(run, m["method"], ratio, int(m["seed"]), os.path.dirname(model)))
    return cells


def recipe_of(cfg) -> str:
    """12 hex digits naming a cell's config up to its seed: cells of one recipe are the seeds
    of one result, whichever experiment dir they were run in."""
    from csp_tf.experiments.protocol import fingerprint_hash

    cfg = cfg.copy()
    cfg.runtime.seed = 0
    return fingerprint_hash(cfg)


def top1_correct(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row top-1 hit, ties against the true class (``evaluate.ranks_of_true_class``)."""
    from csp_tf.evaluate import ranks_of_true_class

    return ranks_of_true_class(np.asarray(scores, np.float64), np.asarray(labels, np.int64)) == 1


def compare_cells(data_root: str, cells: Sequence[Cell], split: str = "test",
                  against: str = "knn_sphere", echo: Echo = print) -> List[Dict[str, object]]:
    """One row per cell: the model's location-only top-1 against ``against`` on ``split``."""
    import keras

    from csp_tf.configs import ExperimentConfig
    from csp_tf.experiments.analysis import correct_by_class
    from csp_tf.experiments.baselines import (LOCATION_BASELINES, located_labeled,
                                              location_baseline_proba)
    from csp_tf.models.loading import load_csp_model
    from csp_tf.train.data_root import DataRoot

    if against not in LOCATION_BASELINES:
        raise ValueError(f"against={against!r}: one of {', '.join(LOCATION_BASELINES)}")
    fit = LOCATION_BASELINES[against][0]
    data = DataRoot.open(data_root)
    rows_eval = located_labeled(data.labeled(split))
    labels = rows_eval["label"].astype(np.int64)
    baseline: Dict[float, np.ndarray] = {}
    out = []
    for i, cell in enumerate(cells, 1):
        if cell.ratio not in baseline:
            model, chosen = fit(located_labeled(data.labeled("train", cell.ratio)),
                                located_labeled(data.labeled("val")), data.num_classes)
            proba = location_baseline_proba(against, model, rows_eval["lon_lat"], data.num_classes)
            baseline[cell.ratio] = top1_correct(proba, labels)
            echo(f"{against} at ratio {cell.ratio:g}: {chosen}")
        cfg = ExperimentConfig.load(os.path.join(cell.path, "config.yaml"))
        if cfg.data.num_classes != data.num_classes:
            raise ValueError(f"{cell.path}: {cfg.data.num_classes} classes, but {data_root} has "
                             f"{data.num_classes}")
        model = load_csp_model(cell.path)
        hits = correct_by_class(model, rows_eval, "location_probabilities").astype(bool)
        del model
        keras.backend.clear_session()  # one model at a time: memory stays flat over many cells
        test = paired_test(hits, baseline[cell.ratio])
        row = {**asdict(cell), "recipe": recipe_of(cfg), "against": against,
               "split": split, **asdict(test), "verdict": test.verdict}
        out.append(row)
        echo(f"[{i}/{len(cells)}] {cell.method:<13} ratio={cell.ratio:<5g} seed={cell.seed}: "
             f"{test.top1_a:.2f} vs {test.top1_b:.2f} ({test.diff:+.2f}, p={test.p_value:.3f}, "
             f"{test.verdict})")
    return out


def render(rows: Sequence[Dict[str, object]]) -> str:
    """Markdown: one line per cell, then a per (method, ratio) summary over seeds."""
    if not rows:
        return "no cells\n"
    against, split = rows[0]["against"], rows[0]["split"]
    lines = [f"Location-only top-1 (%) against `{against}` on `{split}`, paired on the same rows "
             f"(McNemar exact, α = {ALPHA}).", "",
             "| run | method | ratio | seed | model | baseline | diff (95 % CI) | model only / "
             "baseline only | p | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci95"]  # type: ignore[misc]
        lines.append(f"| {r['run']} | {r['method']} | {r['ratio']:g} | {r['seed']} | "
                     f"{r['top1_a']:.2f} | {r['top1_b']:.2f} | {r['diff']:+.2f} ({lo:+.2f}, "
                     f"{hi:+.2f}) | {r['a_only']} / {r['b_only']} | {r['p_value']:.3f} | "
                     f"{r['verdict']} |")
    groups: Dict[Tuple[float, str, str], List[Dict[str, object]]] = {}
    for r in rows:
        key = (float(r["ratio"]), str(r["method"]), str(r["recipe"]))  # type: ignore[arg-type]
        groups.setdefault(key, []).append(r)
    lines += ["", "Per recipe (cells whose configs differ only in the seed):", "",
              "| method | ratio | recipe | seeds | model | mean diff | above / level / below |",
              "|---|---|---|---|---|---|---|"]
    for (ratio, method, recipe), rs in sorted(groups.items()):
        diffs = [float(r["diff"]) for r in rs]  # type: ignore[arg-type]
        top1 = [float(r["top1_a"]) for r in rs]  # type: ignore[arg-type]
        spread = f" ± {np.std(top1, ddof=1):.2f}" if len(rs) > 1 else ""
        counts = [sum(r["verdict"] == v for r in rs) for v in ("above", "level", "below")]
        lines.append(f"| {method} | {ratio:g} | {recipe} | {len(rs)} | {np.mean(top1):.2f}{spread} "
                     f"| {np.mean(diffs):+.2f} | {counts[0]} / {counts[1]} / {counts[2]} |")
    return "\n".join(lines) + "\n"
