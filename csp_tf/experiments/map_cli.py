"""``csp-tf map``: offline PNG maps of a trained model (:mod:`csp_tf.experiments.maps`), a
sub-command registered by the main CLI. Matplotlib and TensorFlow are imported only when it runs.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from csp_tf.cli import CLIError

MAP_EPILOG = """\
examples:
  csp-tf map --model runs/exp/finetune/csp/ratio0.05/seed0 --out runs/maps
  csp-tf map --model runs/exp/finetune/sup_grid/ratio0.05/seed0 --out runs/maps --classes 0,4,9 \\
      --world runs/world
  csp-tf map --model runs/exp/finetune/sup_grid_hash/ratio1/seed0 --out runs/maps_alps \\
      --bbox 5,43,17,48 --resolution 0.02     # one region, finer than the globe's grid

writes OUT/class_maps.png (predicted P(y|loc) next to the world's true range, per class),
OUT/embedding_pca.png (location embeddings over the globe or the --bbox region, first 3
principal components as RGB) and OUT/maps.json (per-class range AUC of the prediction on the
world's grid, the files, their sizes and the extent drawn).
"""


def add_map_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``map``: offline PNG maps of a trained model."""
    p = subparsers.add_parser(
        "map", help="PNG maps: predicted P(y|loc) vs true ranges, location embeddings as RGB",
        description="Draws offline maps (no tiles; coastlines from global_land_mask) of a "
                    "fine-tuned model: P(y|loc) for chosen classes beside the generated world's "
                    "true ranges, and the location embedding reduced to RGB by PCA, over the "
                    "globe or one --bbox region.",
        epilog=MAP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a `csp-tf finetune` (or experiment cell) dir")
    p.add_argument("--out", required=True, help="directory for the PNG files")
    p.add_argument("--classes", default=None,
                   help="class indices, comma-separated (default: one look-alike group of the "
                        "world, else 0,1,2)")
    p.add_argument("--world", default=None,
                   help="generated world dir with true_ranges.npz (default: the parent of the "
                        "model's data root, when it has one)")
    p.add_argument("--resolution", type=float, default=1.0, help="grid step in degrees (default 1)")
    p.add_argument("--bbox", default=None, metavar="LON_MIN,LAT_MIN,LON_MAX,LAT_MAX",
                   help="draw this region only (degrees; not across the dateline), e.g. "
                        "--bbox 5,43,17,48 --resolution 0.02 to see structure finer than the "
                        "globe's 1-degree grid (default: the globe)")
    p.add_argument("--embedding-only", action="store_true",
                   help="only embedding_pca.png (for a pre-training stage: its class head is untrained)")
    p.set_defaults(func=cmd_map, terminal_level=logging.WARNING)
    return p


def parse_classes(text: Optional[str]) -> Optional[List[int]]:
    """``"0,1,2"`` → [0, 1, 2]; None when not given."""
    if not text:
        return None
    try:
        classes = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise CLIError(f"--classes {text!r}: expected comma-separated class indices") from None
    if not classes:
        raise CLIError("--classes: give at least one class index")
    return classes


def cmd_map(args: argparse.Namespace) -> int:
    from csp_tf.experiments.maps import MapError, parse_bbox, render_maps

    try:
        bbox = parse_bbox(args.bbox) if args.bbox else None
        summary = render_maps(args.model, args.out, classes=parse_classes(args.classes),
                              world_dir=args.world, resolution=args.resolution,
                              embedding_only=args.embedding_only, bbox=bbox)
    except MapError as exc:
        raise CLIError(str(exc)) from None
    for name, info in summary["files"].items():
        print(f"wrote {info['path']} ({info['width']}×{info['height']} px)")
    for c in summary["classes"]:
        auc = c.get("range_auc")
        print(f"  class {c['index']} {c['name']}: "
              + (f"range AUC {auc:.3f}" if auc is not None else "no true range (no --world)"))
    return 0
