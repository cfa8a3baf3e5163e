"""``csp-tf ablation``: named studies that explain a result, run as ordinary protocol cells.

* ``finetune``: why location-only top-1 fell as labels grew. Sup. Only (grid) under the
  reference recipe (per-class sigmoid "full loss" + class-balanced sampler capped at 100 per
  class), each half of it swapped out, and the natural-data recipe.
* ``pretrain``: what CSP-MC-BLD's pre-training needs on this data: the in-batch temperature
  (τ1 = 20 dividing the cosine, the reference's [QUIRK]; τ1 = 1; cos·20), the SimCSE weight,
  the number of random negatives K, the batch size and the pre-training length.

Every arm is a ``Method`` with config overrides, so arms resume, share the results table
format and are chosen/scored like every other cell (val for choices, ``--split`` for scores).
"""

from __future__ import annotations

import argparse

from csp_tf.experiments.studies import REFERENCE_FT, STUDIES  # noqa: F401 - re-exported


def add_ablation_parser(subparsers) -> argparse.ArgumentParser:
    from csp_tf.experiments.cli import add_config_args

    p = subparsers.add_parser(
        "ablation", help="run a named ablation study (finetune | pretrain) as protocol cells",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", required=True, choices=sorted(STUDIES))
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ratios", default="0.05", help="label ratios (default 0.05)")
    p.add_argument("--seeds", default="0", help="seeds (default 0)")
    p.add_argument("--split", default="test", choices=["val", "test"])
    add_config_args(p, "every arm")
    p.set_defaults(func=cmd_ablation)
    return p


def cmd_ablation(args: argparse.Namespace) -> int:
    from csp_tf.experiments.cli import run_config
    from csp_tf.experiments.methods import parse_ratios, parse_seeds
    from csp_tf.experiments.protocol import Protocol, run_protocol

    cfg = run_config(args)
    p = Protocol(data_root=args.data_root, out_dir=args.out, base_config=cfg,
                 methods=STUDIES[args.study], ratios=parse_ratios(args.ratios),
                 seeds=parse_seeds(args.seeds), split=args.split,
                 config_name=f"ablation `{args.study}`")
    run_protocol(p, echo=lambda line: print(line, flush=True))
    return 0
