"""``results.csv`` (one row per finished cell) and ``results.md`` (mean ± std over seeds).

A cell is one (method, label ratio, seed). Its row is written only after the cell has been
trained and evaluated, so the row is the cell's done marker: a re-run skips cells that have
one. The CSV is rewritten atomically after every cell (temp file + rename), so an interrupted
run never leaves a half-written file. No TensorFlow here.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd
from tabulate import tabulate

from csp_tf.experiments.methods import Method

# Column order of results.csv. ``score`` says which predictor top1/top3/top5/mrr come from:
# ``fused`` (P(y|img)·P(y|loc)) for every method except Img. Only, which is ``image``.
COLUMNS = ("method", "label", "encoder", "pretrain_loss", "ratio", "seed", "split", "score",
           "top1", "top3", "top5", "mrr",
           "fused_top1", "fused_top3", "fused_mrr",
           "location_top1", "location_top3", "location_mrr", "location_network_top1",
           "image_top1", "image_top3", "image_mrr",
           "count", "train_rows", "pretrain_s", "finetune_s", "eval_s", "config_hash", "finished_at")
FLOAT_COLUMNS = {c for c in COLUMNS if c.endswith(("top1", "top3", "top5", "mrr", "_s"))} | {"ratio"}
INT_COLUMNS = {"seed", "count", "train_rows"}

Key = Tuple[str, float, int]


def cell_key(method: str, ratio: float, seed: int) -> Key:
    return (method, round(float(ratio), 6), int(seed))


def metrics_row(method: Method, ratio: float, seed: int, split: str,
                metrics: Mapping[str, Mapping[str, float]], **extra) -> Dict[str, object]:
    """A results.csv row from ``evaluate_model``'s output (a baseline: only its own part)."""
    headline = metrics[method.score]
    row: Dict[str, object] = {
        "method": method.name, "label": method.label, "encoder": method.encoder_label,
        "pretrain_loss": method.pretrain_loss, "ratio": float(ratio), "seed": int(seed),
        "split": split, "score": method.score,
        "top1": headline["top1"], "top3": headline["top3"], "top5": headline["top5"],
        "mrr": headline["mrr"], "count": int(headline["count"])}
    for part in ("fused", "location", "image"):
        for m in ("top1", "top3", "mrr"):
            # Img. Only trains no location model: its location columns would be a random init.
            missing = (method.image_only and part != "image") or part not in metrics
            row[f"{part}_{m}"] = math.nan if missing else metrics[part][m]
    # P(y|loc) of the network alone, where a place memory's votes are part of ``location``.
    row["location_network_top1"] = (metrics["location_network"]["top1"]
                                    if "location_network" in metrics else math.nan)
    row.update(extra)
    return row


def read_results(path: str) -> List[Dict[str, object]]:
    """Rows of a results.csv (numbers parsed); [] when the file does not exist."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        parsed: Dict[str, object] = {}
        for k, v in r.items():
            if k in FLOAT_COLUMNS:
                parsed[k] = float(v) if v not in ("", None) else math.nan
            elif k in INT_COLUMNS:
                parsed[k] = int(float(v)) if v not in ("", None) else 0
            else:
                parsed[k] = v
        out.append(parsed)
    return out


def write_results(path: str, rows: Sequence[Mapping[str, object]]) -> None:
    """Writes all rows (sorted by method order of appearance, ratio, seed) atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, "")) for k in COLUMNS})
    os.replace(tmp, path)


def _fmt(v: object) -> object:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def summarize(rows: Iterable[Mapping[str, object]], column: str) -> pd.DataFrame:
    """``mean``, sample ``std`` (NaN for one seed) and ``count`` of ``column`` per (method,
    ratio), in row order; NaN values (a metric a method does not have) are left out."""
    df = pd.DataFrame(list(rows), columns=["method", "ratio", column]).dropna()
    return df.groupby(["method", "ratio"], sort=False)[column].agg(["mean", "std", "count"])


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; cells are shown as given (no number re-formatting)."""
    return tabulate(rows, headers=list(header), tablefmt="github", disable_numparse=True)


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")


def markdown_table(rows: Sequence[Mapping[str, object]], column: str, methods: Sequence[Method],
                   ratios: Sequence[float], n_seeds: int, digits: int = 2) -> str:
    """Methods × ratios of ``column`` as mean ± std; the best mean per ratio in bold; ``(n=k)``
    marks a cell with fewer (or more) seeds than ``n_seeds``."""
    stats = summarize(rows, column)
    stats = stats[stats.index.get_level_values("method").isin([m.name for m in methods])]
    best = stats["mean"] == stats.groupby(level="ratio")["mean"].transform("max")
    cells = {}
    for key, s in stats.iterrows():
        text = mean_std(s["mean"], s["std"], digits)
        cells[key] = (f"**{text}**" if best[key] else text) + (
            "" if s["count"] == n_seeds else f" (n={int(s['count'])})")
    return markdown(["Method", "encoder", "pre-training"] + [f"{r * 100:g}%" for r in ratios],
                    [[m.label, m.encoder_label, "-" if m.baseline else m.pretrain_loss]
                     + [cells.get((m.name, r), "–") for r in ratios] for m in methods])


# The paper's relative top-1 gains of CSP-MC-BLD over Sup. Only (grid) on iNat2018 (Table 1).
PAPER_RELATIVE_GAIN = {0.05: 10.4, 0.1: 34.3, 0.2: 16.6}


def paired_gain(rows: Sequence[Mapping[str, object]], method: str, reference: str,
                column: str) -> Dict[float, Tuple[float, float, float, int]]:
    """{ratio: (mean relative gain %, mean paired difference, its std, n pairs)} of ``method``
    over ``reference`` on ``column``, pairing cells of the same ratio and seed."""
    by = {(str(r["method"]), float(r["ratio"]), int(r["seed"])): float(r[column])  # type: ignore[arg-type]
          for r in rows}
    out: Dict[float, List[Tuple[float, float]]] = {}
    for (m, ratio, seed), v in by.items():
        if m == method and (reference, ratio, seed) in by:
            out.setdefault(ratio, []).append((v, by[(reference, ratio, seed)]))
    result = {}
    for ratio, pairs in out.items():
        a = np.asarray(pairs, np.float64)
        if np.isnan(a).any():
            continue
        diff = a[:, 0] - a[:, 1]
        rel = float(100.0 * (a[:, 0].mean() - a[:, 1].mean()) / a[:, 1].mean())
        result[ratio] = (rel, float(diff.mean()),
                         float(diff.std(ddof=1)) if len(diff) > 1 else math.nan, len(diff))
    return result


def gain_table(rows: Sequence[Mapping[str, object]], method: str = "csp",
               reference: str = "sup_grid") -> str:
    """CSP's gain over Sup-only (grid), fused and location-only, beside the paper's figures
    (columns: the paper's ratios and every ratio with a pair)."""
    ratios = sorted(set(PAPER_RELATIVE_GAIN) | set(paired_gain(rows, method, reference, "top1")))

    def cell(g: Tuple[float, float, float, int]) -> str:
        std = "" if math.isnan(g[2]) else f" ± {g[2]:.2f}"
        return f"{g[0]:+.1f} % ({g[1]:+.2f}{std} pts, n={g[3]})"

    body = [[name] + [cell(gains[r]) if r in gains else "–" for r in ratios]
            for column, name in (("top1", "fused top-1"), ("location_top1", "location-only top-1"))
            for gains in [paired_gain(rows, method, reference, column)]]
    body.append(["paper (iNat2018, Table 1)"]
                + [f"+{PAPER_RELATIVE_GAIN[r]:.1f} %" if r in PAPER_RELATIVE_GAIN else "–"
                   for r in ratios])
    return markdown(["score"] + [f"{r * 100:g}%" for r in ratios], body)


def paired_table(rows: Sequence[Mapping[str, object]], method: str,
                 others: Sequence[Method]) -> str:
    """``method`` against each of ``others``, paired by (ratio, seed): the mean difference in
    points ± its std over seeds, location-only and fused; bold where the mean exceeds the std
    (beyond the seed spread). Columns: every ratio with a pair."""
    scores = (("location_top1", "location-only"), ("top1", "fused"))
    gains = {(o.name, c): paired_gain(rows, method, o.name, c) for o in others for c, _ in scores}
    ratios = sorted({r for g in gains.values() for r in g})

    def cell(g: Tuple[float, float, float, int]) -> str:
        text = f"{g[1]:+.2f}" + ("" if math.isnan(g[2]) else f" ± {g[2]:.2f}")
        beyond = not math.isnan(g[2]) and abs(g[1]) > g[2]
        return (f"**{text}**" if beyond else text) + f" (n={g[3]})"

    body = [[o.label, name] + [cell(gains[(o.name, c)][r]) if r in gains[(o.name, c)] else "–"
                               for r in ratios]
            for o in others for c, name in scores if gains[(o.name, c)]]
    return markdown(["against", "score"] + [f"{r * 100:g}%" for r in ratios], body)


def paired_section(rows: Sequence[Mapping[str, object]], method: str,
                   methods: Sequence[Method]) -> str:
    """The ``report --paired`` section: ``method`` against every other trained method."""
    label = {m.name: m.label for m in methods}[method]
    others = [m for m in methods if m.name != method and not m.baseline and not m.image_only]
    return "\n".join(["", f"## {label} against each method, paired by seed (points)", "",
                      "mean ± std of the paired differences over seeds; bold: beyond the seed "
                      "spread (|mean| > std)", "", paired_table(rows, method, others), ""])


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def render_markdown(rows: Sequence[Mapping[str, object]], methods: Sequence[Method],
                    ratios: Sequence[float], seeds: Sequence[int], *, data_root: str,
                    split: str, preset: str, total_cells: int) -> str:
    """The whole results.md: top-1 and top-3 (headline score), location-only top-1, and MRR."""
    done = len(rows)
    parts = [
        "# CSP protocol results",
        "",
        f"* data root: `{data_root}`, evaluated on the `{split}` split",
        f"* config: {preset}; seeds {', '.join(map(str, seeds))}; "
        f"cells finished: {done} / {total_cells}",
        "* score: fused P(y|img)·P(y|loc) (docs/reference.md §9); Img. Only: P(y|img) alone, "
        "the linear image classifier trained on the same labels ('fewshot'); *italic* rows are "
        "scikit-learn "
        "baselines on the same labels (location-only ones report P(y|loc))",
        "* mean ± sample std over seeds (the label subset is fixed; the seed changes the "
        "initialisation, dropout, negatives and batch order); best mean per column in bold; "
        "`(n=k)` marks a cell with fewer seeds than asked",
        "",
        "## Top-1 accuracy (%)", "", markdown_table(rows, "top1", methods, ratios, len(seeds)), "",
        "## Top-3 accuracy (%)", "", markdown_table(rows, "top3", methods, ratios, len(seeds)), "",
        "## MRR", "", markdown_table(rows, "mrr", methods, ratios, len(seeds), digits=3), "",
        "## Location only: top-1 of P(y|loc) (%)", "",
        markdown_table(rows, "location_top1",
                       [m for m in methods if not m.image_only and m.baseline in ("", "location")],
                       ratios, len(seeds)),
        "",
    ]
    # Models with a place memory: P(y|loc) above includes its votes; the network alone here.
    with_memory = [m for m in methods if not m.image_only and not m.baseline and any(
        r.get("method") == m.name and _finite(r.get("location_network_top1")) for r in rows)]
    if with_memory:
        parts += ["## Location only, the network alone (no place memory): top-1 (%)", "",
                  markdown_table(rows, "location_network_top1", with_memory, ratios, len(seeds)),
                  ""]
    by_name = {m.name: m for m in methods}
    for name in ("csp", "csp_multiply"):
        if name in by_name and "sup_grid" in by_name:
            parts += [f"## Relative gain of {by_name[name].label} over Sup. Only (grid)", "",
                      "relative gain of the mean top-1; in brackets the paired (same seed) "
                      "difference in points, mean ± std", "", gain_table(rows, name), ""]
    return "\n".join(parts)
