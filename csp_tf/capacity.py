"""``location_encoder.capacity=auto``: the location network's finest scale and fine-tuning length
chosen from the labeled places a fine-tuning stage sees, not fixed by a preset.

A nearest-neighbour lookup resolves a label down to the spacing of the labeled places; a
Space2Vec encoder resolves it down to its finest scale λ_min (``min_radius``). A preset tuned at
5 % labels keeps the 5 % scale at every ratio, so with more labels the network cannot draw what
the kNN draws (docs/results.md, "The network alone against the kNN"). The val picks on the
real ``places`` countries (2° at 1 %, 1° at 5 %, 0.25° at 100 %) sit at about
``SCALE_PER_SPACING`` times the median distance from a labeled place to its nearest labeled
neighbour (0.60°, 0.22°, 0.049°), so ``auto`` sets λ_min to that multiple, snapped to the
scales ``csp-tf tune`` searches. The length follows the rows: ``auto`` sets
``finetune.min_steps`` to ``MIN_STEPS`` and raises ``finetune.epochs`` to at least
``MIN_EPOCHS``, so a small subset runs 750 steps and a large one 30 epochs (the val picks at
1 %, 5 % and 100 %; 1500 steps at 5 % overfit a little). It also builds the network val chose
on countries at every ratio from 1 to 100 %: at least ``MIN_HIDDEN_DIM`` wide and without
dropout (the ``demo`` preset's 256 units and dropout 0.5 cost 2.2 points at 5 %). With an
encoder of trainable cells (``gridcell_hash``) it also jitters each labeled place by its
distance to the nearest other one (``finetune.location_jitter_per_spacing``), unless a jitter is set.

``fixed`` (the default) leaves the config as written. The rule is a pure function of the
labeled locations (:func:`resolve_capacity`); ``csp-tf finetune`` and ``csp-tf experiment``
apply it per fine-tuning stage and log what it chose; the TFX pipeline, whose fine-tuning
always starts from its pre-trained encoder, applies the length. A stage that starts from a
pre-trained encoder keeps that encoder's network and scale (its weights were learned with
them): only the length changes.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from csp_tf.coords import nearest_other_distances_deg

CAPACITY_MODES = ("fixed", "auto")
# λ_min / median nearest-labeled-neighbour distance, fitted on the val picks above (3.3-5.1).
SCALE_PER_SPACING = 4.0
# The finest scales the rule may pick (degrees): those ``csp-tf tune`` searches.
SCALE_GRID: Sequence[float] = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# The network: at least this wide, no dropout (FFN and FCNet alike).
MIN_HIDDEN_DIM = 512
# Fine-tuning length: at least this many steps and epochs (the val picks on countries).
MIN_STEPS = 750
MIN_EPOCHS = 30
# Encoders with trainable cells (docs/reference.md §13.4.1): ``auto`` spreads each label over
# about its own neighbourhood, ``finetune.location_jitter_per_spacing`` = this (σ = the distance
# to the nearest labeled place; docs/results.md, "Trainable cells"), unless a jitter is set.
CELL_ENCODERS = ("gridcell_hash",)
JITTER_PER_SPACING = 1.0
# Encoders whose ``min_radius`` is a length in degrees (Space2Vec, docs/reference.md §2.1, and
# gridcell_hash's sinusoids, §13.4.1; its grid keeps its own cell sizes); the Sphere2Vec ones
# take radian multiples and are left as configured.
DEGREE_SCALED = ("gridcell", "gridcellnorm", "theory", "theorynorm", "theorydiag", "gridcell_hash")


def labeled_spacing_deg(lon_lat: np.ndarray) -> float:
    """Median great-circle distance (degrees) from each labeled place to its nearest other
    labeled place; duplicates count as distance 0. ValueError with fewer than two places."""
    return float(np.nanmedian(nearest_other_distances_deg(lon_lat)))


def snap_scale(value_deg: float, grid: Sequence[float] = SCALE_GRID) -> float:
    """The grid value nearest to ``value_deg`` on a log scale (clipped to the grid's ends)."""
    if not value_deg > 0:
        return float(min(grid))
    return float(min(grid, key=lambda g: abs(math.log(g) - math.log(value_deg))))


def auto_capacity(spacing_deg: float, epochs: int, keep_encoder: bool = False,
                  hidden_dim: int = MIN_HIDDEN_DIM, scale: bool = True) -> Dict[str, Any]:
    """The dotted overrides ``auto`` applies: the network (width never lowered, no dropout) and
    its finest scale (``scale``: a degree-scaled encoder), unless ``keep_encoder``; and the
    fine-tuning length (``min_steps`` set, epochs never fewer than configured; 0 epochs, no
    location model, stays 0)."""
    out: Dict[str, Any] = {}
    if not keep_encoder:
        out.update({"location_encoder.hidden_dim": max(int(hidden_dim), MIN_HIDDEN_DIM),
                    "location_encoder.dropout": 0.0, "location_encoder.fcnet_dropout": 0.0})
        if scale:
            out["location_encoder.position.min_radius"] = snap_scale(
                SCALE_PER_SPACING * spacing_deg)
    if epochs > 0:
        out["finetune.epochs"] = max(int(epochs), MIN_EPOCHS)
        out["finetune.min_steps"] = MIN_STEPS
    return out


def resolve_capacity(config, lon_lat: Optional[np.ndarray], keep_encoder: bool = False):
    """``config`` with ``auto``'s choices for these labeled locations (the fine-tuning stage's
    label subset); ``config`` itself when ``location_encoder.capacity`` is ``fixed``.
    ``keep_encoder``: the stage starts from a pre-trained encoder, whose network and scale stay (then, or
    for an encoder whose scale the rule leaves alone, ``lon_lat`` is not read and may be None)."""
    if config.location_encoder.capacity == "fixed":
        return config
    le = config.location_encoder
    scale = not keep_encoder and le.position.type in DEGREE_SCALED
    spacing = labeled_spacing_deg(lon_lat) if scale else float("nan")
    out = auto_capacity(spacing, config.finetune.epochs, keep_encoder,
                        hidden_dim=le.hidden_dim, scale=scale)
    ft = config.finetune
    if (le.position.type in CELL_ENCODERS and ft.epochs > 0
            and not ft.location_jitter and not ft.location_jitter_per_spacing):
        out["finetune.location_jitter_per_spacing"] = JITTER_PER_SPACING
    return config.override(out)


def describe(config) -> str:
    """One line naming what the stage runs with (for the log)."""
    le, ft = config.location_encoder, config.finetune
    scale = getattr(le.position.options, "min_radius", None)
    return (f"location_encoder.capacity={le.capacity}: "
            + (f"min_radius={scale:g}, " if scale is not None else "")
            + f"hidden_dim={le.hidden_dim}, dropout={le.dropout:g}, "
            + f"finetune.epochs={ft.epochs}, finetune.min_steps={ft.min_steps}"
            + (f", finetune.location_jitter_per_spacing={ft.location_jitter_per_spacing:g}"
               if ft.location_jitter_per_spacing else ""))
