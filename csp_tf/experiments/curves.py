"""Learning curves of an experiment run with ``--eval-every``: validation top-1 against
fine-tuning epochs, per method, mean over seeds with the min–max band (PNG)."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

METRICS = (("val_fused_top1", "fused top-1 (%)"), ("val_location_top1", "location-only top-1 (%)"))


def read_curve(cell_dir: str, key: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(epochs, values) of ``key`` in a cell's history.json; None if it has none."""
    path = os.path.join(cell_dir, "history.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        history = json.load(f)
    points = [(h["epoch"], h[key]) for h in history
              if h.get("stage") != "image_classifier" and key in h and "epoch" in h]
    if not points:
        return None
    epochs, values = zip(*points)
    return np.asarray(epochs), np.asarray(values, float)


def collect(protocol, key: str) -> Dict[Tuple[str, float], List[Tuple[np.ndarray, np.ndarray]]]:
    """{(method, ratio): [curve per seed]} for every cell that recorded ``key``."""
    out: Dict[Tuple[str, float], List[Tuple[np.ndarray, np.ndarray]]] = {}
    for method in protocol.methods:
        for ratio in protocol.ratios:
            for seed in protocol.seeds:
                curve = read_curve(protocol.finetune_dir(method, ratio, seed), key)
                if curve is not None:
                    out.setdefault((method.name, ratio), []).append(curve)
    return out


def plot_learning_curves(protocol, path: str) -> Optional[str]:
    """One column per ratio, one row per recorded metric; returns ``path`` or None if no cell
    recorded a curve."""
    from matplotlib.figure import Figure

    data = {key: collect(protocol, key) for key, _ in METRICS}
    rows = [(key, label) for key, label in METRICS if data[key]]
    if not rows:
        return None
    labels = {m.name: m.label for m in protocol.methods}
    ratios = list(protocol.ratios)
    fig = Figure(figsize=(max(7.0, 4.2 * len(ratios)), 3.2 * len(rows) + 0.6), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.6 / fig.get_figheight() + 0.02,
                        top=1 - 0.6 / fig.get_figheight(), wspace=0.25, hspace=0.45)
    for i, (key, ylabel) in enumerate(rows):
        for j, ratio in enumerate(ratios):
            ax = fig.add_subplot(len(rows), len(ratios), i * len(ratios) + j + 1)
            for method in protocol.methods:
                curves = data[key].get((method.name, ratio))
                if not curves:
                    continue
                n = min(len(c[0]) for c in curves)
                epochs = curves[0][0][:n]
                values = np.stack([c[1][:n] for c in curves])
                line, = ax.plot(epochs, values.mean(axis=0), label=f"{labels[method.name]} "
                                f"(n={len(curves)})", linewidth=1.2)
                if len(curves) > 1:
                    ax.fill_between(epochs, values.min(axis=0), values.max(axis=0),
                                    color=line.get_color(), alpha=0.2, linewidth=0)
            ax.set_title(f"label ratio {ratio:g}", fontsize=9)
            ax.set_xlabel("fine-tuning epoch", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("validation top-1 during fine-tuning: mean over seeds, band = min–max", fontsize=10)
    fig.savefig(path, dpi=100)
    return path
