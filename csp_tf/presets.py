"""Named experiment presets, as data: each is the dotted keys it sets on the defaults (what
``--set`` takes). The authors' two scripts (docs/reference.md §10.1), the released fMoW checkpoint's
settings (§10.2) and the small ``demo`` family. Look them up with
``csp_tf.configs.get_preset(name)``; this module imports nothing, so configs can import it.

Presets are recipes, not data sets: shapes come from the data root (``data.feature_dim`` /
``num_classes`` stay 0); ``PAPER_SHAPES`` records the paper's.
"""

from __future__ import annotations

from typing import Any, Dict

Preset = Dict[str, Any]

# (feature_dim, num_classes) of the data sets the two scripts were written for (docs/reference.md
# §10.1).
PAPER_SHAPES = {"inat2018": (2048, 8142), "fmow": (2048, 62), "fmow_released": (2048, 62)}

# The reference's fine-tuning recipe (docs/reference.md §7.5, §8, §9): per-class sigmoid "full
# loss", class-balanced sampler, mini-batch image probe, plain product fusion.
REFERENCE_FINETUNE: Preset = {
    "finetune.location_loss": "presence", "finetune.sampler": "balanced",
    "finetune.lr_schedule": "exp", "finetune.image_classifier_solver": "minibatch",
    "finetune.fusion": "product", "finetune.min_steps": 0, "finetune.place_memory": "off"}

# Fine-tuning for natural (not class-balanced) data: softmax with the class prior, shuffled
# epochs, a converged image probe, fusion and the place memory calibrated on val
# (docs/results.md).
NATURAL_FINETUNE: Preset = {
    "finetune.location_loss": "softmax", "finetune.sampler": "shuffle",
    "finetune.image_classifier_solver": "fullbatch", "finetune.fusion": "calibrated",
    "finetune.lr_schedule": "cosine", "finetune.min_steps": 500,
    "finetune.place_memory": "auto"}

# What the two reference scripts share (CSP-MC-BLD: gridcell S=32 0.1°..360°, contsoftmax,
# τ = (20, 1, 1), w = 1, K = 1, sphericalold, 5 % stratified labels, docs/reference.md §10.1).
_CSP_SCRIPT: Preset = {
    "data.standardize_features": False,
    "location_encoder.position.type": "gridcell",
    "location_encoder.position.gridcell.frequency_num": 32,
    "location_encoder.position.gridcell.min_radius": 0.1,
    "location_encoder.position.gridcell.max_radius": 360.0,
    "location_encoder.position.gridcell.freq_init": "geometric",
    "location_encoder.num_hidden_layer": 1, "location_encoder.hidden_dim": 512,
    "location_encoder.num_filts": 256, "location_encoder.dropout": 0.5,
    "pretrain.loss": "contsoftmax", "pretrain.batch_size": 1024, "pretrain.temp_inbatch": 20.0,
    "pretrain.temp_negloc": 1.0, "pretrain.temp_simcse": 1.0, "pretrain.rand_sample_weight": 1.0,
    "pretrain.simcse_weight": 1.0, "pretrain.num_neg_rand_loc": 1,
    "pretrain.neg_rand_type": "sphericalold",
    "finetune.lr": 1e-3, "finetune.lr_decay": 0.98, "finetune.batch_size": 1024,
    "finetune.label_ratio": 0.05, "finetune.neg_rand_type": "sphericalold",
    **REFERENCE_FINETUNE}

# `run-inat_2018-contsoftmax.sh` (effective values: LR 5e-4, leakyrelu, full-label image
# predictions).
INAT2018: Preset = {**_CSP_SCRIPT, "location_encoder.activation": "leakyrelu",
                    "pretrain.lr": 5e-4, "pretrain.epochs": 30, "finetune.epochs": 200,
                    "finetune.image_classifier_labels": "full"}

# `run-fmow-contsoftmax.sh` (script values: gelu, unsuper_lr 5e-5, 300 epochs, few-shot image
# predictions; the released checkpoint differs, see FMOW_RELEASED).
FMOW: Preset = {**_CSP_SCRIPT, "location_encoder.activation": "gelu", "pretrain.lr": 5e-5,
                "pretrain.epochs": 300, "finetune.epochs": 300,
                "finetune.image_classifier_labels": "fewshot"}

# The released fMoW checkpoint's settings: simcse_weight 0.1 and τ1 = 1 (docs/reference.md §10.2).
FMOW_RELEASED: Preset = {**FMOW, "pretrain.simcse_weight": 0.1, "pretrain.temp_inbatch": 1.0}

# `inat2018` with the reference's fine-tuning, shrunk to run in about a minute on 2 cores
# (parity runs at demo size).
DEMO_REFERENCE: Preset = {**INAT2018, "location_encoder.hidden_dim": 256,
                          "location_encoder.num_filts": 128, "pretrain.epochs": 8,
                          "pretrain.batch_size": 512, "pretrain.lr": 1e-3, "finetune.epochs": 40,
                          "finetune.batch_size": 256, "finetune.image_classifier_labels": "fewshot"}

# CSP-MC-BLD (iNat2018 pre-training recipe) with the natural-data fine-tuning, shrunk for the
# generated demo world.
DEMO: Preset = {**DEMO_REFERENCE, "data.standardize_features": True, **NATURAL_FINETUNE}

# `demo` with what `csp-tf tune` chose on the val split of the real `places` set (Sup. Only
# (grid), 5 % labels, 8 trials; docs/results.md): a 512-wide FFN without dropout, finest scale
# 1°, and 10 fine-tuning epochs, raised to at least 1500 steps. Sup. Only (wrap)'s FCNet drops
# the reference's fixed 0.5 ResLayer dropout: 87.0 → 94.6 % on val at 5 % (docs/results.md).
PLACES: Preset = {**DEMO, "location_encoder.hidden_dim": 512, "location_encoder.dropout": 0.0,
                  "location_encoder.fcnet_dropout": 0.0,
                  "location_encoder.position.gridcell.min_radius": 1.0, "finetune.epochs": 10,
                  "finetune.min_steps": 1500}

PRESETS: Dict[str, Preset] = {"inat2018": INAT2018, "fmow": FMOW, "fmow_released": FMOW_RELEASED,
                              "demo": DEMO, "demo_reference": DEMO_REFERENCE, "places": PLACES}
