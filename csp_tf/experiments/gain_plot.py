"""How pre-training's gain depends on the label ratio: the paired (same seed) difference in
top-1 points of each method over a reference (Sup. Only (grid)), mean ± std over seeds, against
the label ratio on a log axis (PNG). ``csp-tf report --gain-plot`` draws it."""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

from csp_tf.experiments.methods import Method
from csp_tf.experiments.results import paired_gain

SCORES = (("location_top1", "location-only top-1"), ("top1", "fused top-1"))


def plot_paired_gains(rows: Sequence[Mapping[str, object]], methods: Sequence[Method], path: str,
                      reference: str = "sup_grid", title: str = "") -> str:
    """Writes the PNG and returns ``path``; ValueError when no method pairs with ``reference``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {m.name: m.label for m in methods}
    compared = [m for m in methods if m.name != reference and not m.baseline and not m.image_only]
    fig, axes = plt.subplots(1, len(SCORES), figsize=(11, 4), sharey=True)
    drawn = 0
    ticks: set = set()
    for ax, (column, label) in zip(axes, SCORES):
        for m in compared:
            gains = paired_gain(rows, m.name, reference, column)
            ratios = sorted(gains)
            if not ratios:
                continue
            mean = [gains[r][1] for r in ratios]
            std = [0.0 if math.isnan(gains[r][2]) else gains[r][2] for r in ratios]  # one seed
            ns = sorted({gains[r][3] for r in ratios})
            n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
            ax.errorbar([100 * r for r in ratios], mean, yerr=std, marker="o", capsize=3,
                        label=f"{m.label} (n={n} seeds)")
            ticks.update(100 * r for r in ratios)
            drawn += 1
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(sorted(ticks), [f"{t:g}" for t in sorted(ticks)])
        ax.minorticks_off()
        ax.set_xlabel("labeled share of train (%)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if not drawn:
        plt.close(fig)
        raise ValueError(f"no method has cells paired (same ratio and seed) with {reference!r}")
    axes[0].set_ylabel(f"top-1 − {names.get(reference, reference)} (points, paired by seed)")
    axes[-1].legend(fontsize=8)
    fig.suptitle(title or f"gain over {names.get(reference, reference)}, mean ± std over seeds")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
