"""``csp-tf generate`` and ``csp-tf ingest``: sub-command parsers for the csp-tf console script.

The console script (``csp_cli``) calls ``add_generate_parser(subparsers)`` and
``add_ingest_parser(subparsers)``; each registers ``func(args) -> exit code``. A ``DataError``
is printed as one line (``csp-tf ingest: error: ...``) with exit code 2, not a traceback.
Beam options go after ``--`` (or, when the caller uses ``parse_known_args``, anywhere; see
``main``). ``python -m csp_tf.data.cli`` runs these two commands on their own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import List, Optional, Sequence

from csp_tf.data.errors import DataError
from csp_tf.logs import for_args

LOG = logging.getLogger("csp_tf.data.cli")

GENERATE_EPILOG = """\
examples:
  csp-tf generate --out runs/world                 # the small demo world (CSV manifest)
  csp-tf generate --out runs/world --ingest        # ... and its TFRecords in runs/world/data
  csp-tf generate --out runs/bench --size benchmark --format parquet --seed 1
  csp-tf generate --out runs/bad --inject-bad-rows --ingest   # see runs/bad/data/dead_letter/

writes: manifest.<format>, labels.txt, world.json (parameters, species, groups, expected bad rows)
and true_ranges.npz (per-species range densities on a lon/lat grid); with --ingest also the data
root DIR/data (metadata.json, summary.json, pretrain/ train/ val/ test/ shards, dead_letter/).
"""

INGEST_EPILOG = """\
manifest columns: id, lon, lat (degrees), optional label (class name; empty = unlabeled),
optional split (train/val/test/pretrain: replaces the hash split) and subset (train rows: the
smallest label ratio in (0, 1] whose subset holds the row), optional date, user, and one of:
features (JSON list or space-separated floats), features_path (.npy file), image_path (image
file; needs --backbone). Relative paths are relative to the manifest. Bad rows go to
OUT/dead_letter/rejected-*.jsonl with their reason; a damaged file stops the ingest, naming it.
OUT is replaced only once the new data root is complete (a failed run leaves it as it was).

examples:
  csp-tf ingest --manifest data/obs.csv --out data/root --feature-dim 2048 --labels data/labels.txt
  csp-tf ingest --manifest 'data/part-*.parquet' --out data/root --feature-dim 64 --in-process
  csp-tf ingest --manifest imgs.csv --out root --feature-dim 1280 \\
      --backbone EfficientNetV2B0 --backbone-weights weights/effv2b0_notop.weights.h5
  csp-tf ingest --manifest gs://b/obs.csv --out gs://b/root --feature-dim 2048 -- \\
      --runner=DataflowRunner --project=P --region=us-central1 \\
      --temp_location=gs://b/tmp --setup_file=./setup.py

Beam options after `--` override the defaults (DirectRunner, --direct_num_workers=1,
--direct_running_mode=in_memory); docs/data.md lists Flink and Spark flags too.
"""


def add_generate_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``generate``: write a generated world (and optionally ingest it)."""
    from csp_tf.data.world import MANIFEST_FORMATS, SIZES

    p = subparsers.add_parser(
        "generate", help="write a generated world (manifest + true ranges), optionally ingested",
        description="Generate a world of look-alike species with mostly disjoint ranges on land, a long "
                    "tail and observer bias: a realistic stand-in for iNat to run csp-tf end to end.",
        epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the world into")
    p.add_argument("--size", choices=list(SIZES), default="small",
                   help="small: 20 species, 8000 unlabeled + 3000 labeled rows (seconds); "
                        "benchmark: 100 species, 100k rows; tiny: for tests (default: small)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same world (default 0)")
    p.add_argument("--format", dest="manifest_format", choices=list(MANIFEST_FORMATS), default="csv",
                   help="manifest file format (default csv)")
    p.add_argument("--feature-dim", type=int, default=64, help="image-feature width F (default 64)")
    p.add_argument("--num-species", type=int, help="override the size's number of species")
    p.add_argument("--num-groups", type=int, help="override the number of look-alike groups")
    p.add_argument("--range-overlap", type=float, default=0.3,
                   help="probability that a look-alike shares its range with another (default 0.3; "
                        "0 = all look-alikes far apart, the pre-0.3 world)")
    p.add_argument("--num-unlabeled", type=int, help="override the unlabeled pool size")
    p.add_argument("--num-labeled", type=int, help="override the labeled set size")
    p.add_argument("--inject-bad-rows", action="store_true",
                   help="mix a few bad rows of every kind into the manifest (dead-letter demo)")
    p.add_argument("--ingest", action="store_true",
                   help="also run the Beam ingest into DIR/data (replacing an earlier one)")
    _add_run_options(p)
    p.set_defaults(func=run_generate_command)
    return p


def add_ingest_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``ingest``: manifests -> TFRecord data root with a dead letter."""
    p = subparsers.add_parser(
        "ingest", help="validate manifests and write sharded TFRecords (Beam), bad rows to a dead letter",
        description="Read CSV / JSONL / Parquet manifests, check every row, split labeled rows into "
                    "train/val/test by a stable hash of the id, and write gzip TFRecord shards, "
                    "metadata.json, labels.txt and summary.json into OUT.",
        epilog=INGEST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, action="append", metavar="PATH",
                   help="manifest file or glob (.csv, .jsonl, .parquet; repeat for several)")
    p.add_argument("--out", required=True, metavar="DIR", help="data root to write")
    p.add_argument("--feature-dim", required=True, type=int, metavar="F",
                   help="image-feature width every row must have (the backbone's output width)")
    p.add_argument("--labels", metavar="FILE",
                   help="labels.txt (one class name per line, index = line number); rows with other "
                        "labels are rejected. Default: the sorted labels found in the data")
    p.add_argument("--split-fractions", type=float, nargs=3, default=(0.7, 0.15, 0.15),
                   metavar=("TRAIN", "VAL", "TEST"), help="fractions of labeled rows (default 0.7 0.15 0.15)")
    p.add_argument("--backbone", metavar="NAME|FILE.keras",
                   help="image backbone for image_path rows: a keras.applications name "
                        "(e.g. ResNet50) or a .keras model file")
    p.add_argument("--backbone-weights", metavar="FILE|imagenet|random",
                   help="weights for a keras.applications backbone (required with one): a local "
                        "weights file, 'imagenet' (downloads), or 'random' (tests only)")
    p.add_argument("--image-size", type=int, default=224, help="backbone input size (default 224)")
    p.add_argument("--keep-duplicate-ids", action="store_true",
                   help="do not reject rows whose id repeats (skips a shuffle; ids must then be unique)")
    _add_run_options(p)
    p.set_defaults(func=run_ingest_command)
    return p


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-shards", type=int, default=4, help="TFRecord shards per split (default 4)")
    p.add_argument("--in-process", action="store_true",
                   help="run the DirectRunner in this process (fast start for small inputs)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing data root (swapped in only after a successful run)")
    p.add_argument("beam_args", nargs=argparse.REMAINDER,
                   help="after --: Beam pipeline options, e.g. -- --runner=DataflowRunner ...")


def run_generate_command(args: argparse.Namespace) -> int:
    """``csp-tf generate``: returns the exit code."""
    return _guarded("generate", _generate, args)


def run_ingest_command(args: argparse.Namespace) -> int:
    """``csp-tf ingest``: returns the exit code."""
    return _guarded("ingest", _ingest, args)


def _generate(args: argparse.Namespace) -> None:
    from csp_tf.data.world import generate_world

    LOG.info("generate: %s world (seed %d) -> %s", args.size, args.seed, args.out)
    world = generate_world(
        args.out, args.size, num_species=args.num_species, num_groups=args.num_groups,
        feature_dim=args.feature_dim, num_unlabeled=args.num_unlabeled,
        num_labeled=args.num_labeled, seed=args.seed, manifest_format=args.manifest_format,
        inject_bad_rows=args.inject_bad_rows, range_overlap=args.range_overlap)
    print(f"world: {len(world['class_names'])} species, {world['rows']} rows"
          + (f" + {sum(world['bad_rows'].values())} bad" if world["bad_rows"] else "")
          + f" -> {world['manifest']}")
    if args.ingest:
        from csp_tf.data.ingest import run_ingest

        summary = _with_heartbeat(lambda: run_ingest(
            world["manifest"], os.path.join(args.out, "data"), args.feature_dim,
            class_names=world["class_names"], num_shards=args.num_shards,
            beam_args=_beam_args(args), in_process=args.in_process,
            overwrite=True))
        _print_summary(summary)


def _ingest(args: argparse.Namespace) -> None:
    from csp_tf.data.ingest import run_ingest

    class_names = _read_labels(args.labels) if args.labels else None
    summary = _with_heartbeat(lambda: run_ingest(
        args.manifest, args.out, args.feature_dim, class_names=class_names,
        num_shards=args.num_shards, split_fractions=tuple(args.split_fractions),
        beam_args=_beam_args(args), backbone=args.backbone,
        backbone_weights=args.backbone_weights, image_size=args.image_size,
        check_duplicate_ids=not args.keep_duplicate_ids, in_process=args.in_process,
        overwrite=args.overwrite))
    _print_summary(summary)


def _beam_args(args: argparse.Namespace) -> List[str]:
    extra = [a for a in (args.beam_args or []) if a != "--"]
    return extra + list(getattr(args, "unknown_args", []) or [])


def _read_labels(path: str) -> List[str]:
    if not os.path.exists(path):
        raise DataError(f"labels file {path!r} does not exist")
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _print_summary(summary: dict) -> None:
    out = summary["rows_out"]
    print(f"ingest: {summary['rows_in']} rows in {summary['elapsed_s']:.1f} s "
          f"({summary['rows_per_s']:.0f} rows/s) -> {summary['output_dir']}")
    print("  out: " + ", ".join(f"{k} {v}" for k, v in out.items()))
    if summary["rejected"]:
        print(f"  rejected {summary['rejected_total']}: "
              + ", ".join(f"{k} {v}" for k, v in summary["rejected"].items())
              + f"  (see {', '.join(summary['dead_letter'])})")
    else:
        print("  rejected: none")


def _with_heartbeat(fn, every_s: float = 15.0):
    """Runs fn, logging 'still running' every ``every_s`` seconds (Beam runs are silent)."""
    done = threading.Event()
    start = time.time()

    def beat() -> None:
        while not done.wait(every_s):
            LOG.info("ingest: still running (%.0f s)", time.time() - start)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        return fn()
    finally:
        done.set()


def _guarded(command: str, fn, args: argparse.Namespace) -> int:
    try:
        fn(args)
    except DataError as exc:
        print(f"csp-tf {command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A parser with just the two data sub-commands (``python -m csp_tf.data.cli``)."""
    parser = argparse.ArgumentParser(prog="csp-tf", description="csp-tf data commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_generate_parser(sub)
    add_ingest_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parses with ``parse_known_args`` so Beam flags may also come without ``--``."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not all(u.startswith("--") and "=" in u for u in unknown):
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (Beam options look like "
                     f"--name=value; put them after --)")
    args.unknown_args = unknown
    with for_args(args):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
