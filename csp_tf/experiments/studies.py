"""The arms of ``csp-tf ablation``'s studies (data only: the CLI in ``ablation``, experiment plans
in ``plan``). Each arm is a ``Method`` with config overrides."""

from __future__ import annotations

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
