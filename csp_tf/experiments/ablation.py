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
from typing import Dict, List

from csp_tf.experiments.methods import Method

REFERENCE_FT = {"finetune.location_loss": "presence", "finetune.sampler": "balanced"}

STUDIES: Dict[str, List[Method]] = {
    "finetune": [
        Method("ft_reference", "presence loss + balanced sampler (reference)", "gridcell",
               overrides=dict(REFERENCE_FT)),
        Method("ft_presence_shuffle", "presence loss + shuffled epochs", "gridcell",
               overrides={"finetune.location_loss": "presence", "finetune.sampler": "shuffle"}),
        Method("ft_softmax_balanced", "softmax + balanced sampler", "gridcell",
               overrides={"finetune.location_loss": "softmax", "finetune.sampler": "balanced"}),
        Method("ft_natural", "softmax + shuffled epochs (natural, default)", "gridcell"),
    ],
    "pretrain": [
        Method("pt_ref", "CSP-MC-BLD, τ1=20 divides cos (reference)", "gridcell",
               pretrain_loss="contsoftmax"),
        Method("pt_tau1", "τ1 = 1 (paper text)", "gridcell", pretrain_loss="contsoftmax",
               overrides={"pretrain.temp_inbatch": 1.0}),
        Method("pt_multiply", "logits cos·20 (CLIP-style fix)", "gridcell",
               pretrain_loss="contsoftmax", overrides={"pretrain.temperature_mode": "multiply"}),
        Method("pt_nosimcse", "SimCSE weight 0", "gridcell", pretrain_loss="contsoftmax",
               overrides={"pretrain.simcse_weight": 0.0}),
        Method("pt_k4", "K = 4 random negatives", "gridcell", pretrain_loss="contsoftmax",
               overrides={"pretrain.num_neg_rand_loc": 4}),
        Method("pt_batch128", "batch 128", "gridcell", pretrain_loss="contsoftmax",
               overrides={"pretrain.batch_size": 128}),
        Method("pt_long", "pre-training 3× longer", "gridcell", pretrain_loss="contsoftmax",
               overrides={"pretrain.epochs": 24}),
    ],
}


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
