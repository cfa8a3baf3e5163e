"""Named experiment presets: the authors' two scripts (SPEC §10.1), the released fMoW
checkpoint's settings (§10.2) and a small ``demo``. Look them up with
``csp_tf.configs.get_preset(name)``."""

from __future__ import annotations

from csp_tf.configs import (DataConfig, ExperimentConfig, FinetuneConfig, LocationEncoderConfig,
                            PositionEncoderConfig, PretrainConfig, register_preset)


def _gridcell_csp(activation: str) -> LocationEncoderConfig:
    return LocationEncoderConfig(
        position=PositionEncoderConfig(type="gridcell", frequency_num=32, min_radius=0.1,
                                       max_radius=360.0, freq_init="geometric"),
        num_hidden_layer=1, hidden_dim=512, num_filts=256, dropout=0.5, activation=activation)


# (feature_dim, num_classes) of the data sets the two scripts were written for (SPEC §10.1).
PAPER_SHAPES = {"inat2018": (2048, 8142), "fmow": (2048, 62), "fmow_released": (2048, 62)}


def _csp_script(activation: str, pretrain_lr: float, pretrain_epochs: int,
                finetune_epochs: int, image_classifier_labels: str) -> ExperimentConfig:
    """What the two reference scripts share (CSP-MC-BLD: contsoftmax, τ = (20, 1, 1), w = 1,
    K = 1, sphericalold, 5 % stratified labels); the arguments are what differs (SPEC §10.1)."""
    return ExperimentConfig(
        # Shapes come from the data root (0 = read metadata.json): a preset is a recipe, not a
        # data set, so it runs on any feature width; PAPER_SHAPES records the paper's.
        data=DataConfig(standardize_features=False),
        location_encoder=_gridcell_csp(activation),
        pretrain=PretrainConfig(loss="contsoftmax", lr=pretrain_lr, epochs=pretrain_epochs,
                                batch_size=1024, temp_inbatch=20.0, temp_negloc=1.0,
                                temp_simcse=1.0, rand_sample_weight=1.0, simcse_weight=1.0,
                                num_neg_rand_loc=1, neg_rand_type="sphericalold"),
        finetune=reference_finetune(
            FinetuneConfig(lr=1e-3, lr_decay=0.98, epochs=finetune_epochs, batch_size=1024,
                           label_ratio=0.05, neg_rand_type="sphericalold",
                           image_classifier_labels=image_classifier_labels)),
    )


def reference_finetune(ft: FinetuneConfig) -> FinetuneConfig:
    """The reference's fine-tuning recipe (SPEC §7.5, §8, §9): per-class sigmoid "full loss",
    class-balanced sampler, mini-batch image probe, plain product fusion."""
    ft.location_loss, ft.sampler, ft.lr_schedule = "presence", "balanced", "exp"
    ft.image_classifier_solver, ft.fusion, ft.min_steps = "minibatch", "product", 0
    return ft


@register_preset("inat2018")
def inat2018() -> ExperimentConfig:
    """`run-inat_2018-contsoftmax.sh` (effective values: LR 5e-4, leakyrelu, full-label image
    predictions)."""
    return _csp_script("leakyrelu", 5e-4, 30, 200, "full")


@register_preset("fmow")
def fmow() -> ExperimentConfig:
    """`run-fmow-contsoftmax.sh` (script values: gelu, unsuper_lr 5e-5, 300 epochs, few-shot
    image predictions; the released checkpoint differs, see ``fmow_released``)."""
    return _csp_script("gelu", 5e-5, 300, 300, "fewshot")


@register_preset("fmow_released")
def fmow_released() -> ExperimentConfig:
    """The released fMoW checkpoint's settings: simcse_weight 0.1 and τ1 = 1 (SPEC §10.2)."""
    cfg = fmow()
    cfg.pretrain.simcse_weight = 0.1
    cfg.pretrain.temp_inbatch = 1.0
    return cfg


def _shrink_for_cpu(cfg: ExperimentConfig) -> ExperimentConfig:
    """The iNat2018 architecture shrunk to run in about a minute on 2 cores; shapes come from
    the data root's metadata.json."""
    cfg.location_encoder.hidden_dim = 256
    cfg.location_encoder.num_filts = 128
    cfg.pretrain.epochs = 8
    cfg.pretrain.batch_size = 512
    cfg.pretrain.lr = 1e-3
    cfg.finetune.epochs = 40
    cfg.finetune.batch_size = 256
    cfg.finetune.image_classifier_labels = "fewshot"
    return cfg


def natural_finetune(ft: FinetuneConfig) -> FinetuneConfig:
    """Fine-tuning for natural (not class-balanced) data: softmax with the class prior,
    shuffled epochs, a converged image probe, fusion calibrated on val (docs/results.md)."""
    defaults = FinetuneConfig()
    for name in ("location_loss", "sampler", "image_classifier_solver", "fusion"):
        setattr(ft, name, getattr(defaults, name))
    ft.lr_schedule, ft.min_steps = "cosine", 500
    return ft


@register_preset("demo")
def demo() -> ExperimentConfig:
    """CSP-MC-BLD (iNat2018 pre-training recipe) with the natural-data fine-tuning, shrunk for
    the generated demo world."""
    cfg = _shrink_for_cpu(inat2018())
    cfg.data.standardize_features = True
    natural_finetune(cfg.finetune)
    return cfg


@register_preset("demo_reference")
def demo_reference() -> ExperimentConfig:
    """``demo`` with the reference's fine-tuning recipe everywhere (parity runs at demo size)."""
    return _shrink_for_cpu(inat2018())


@register_preset("places")
def places() -> ExperimentConfig:
    """``demo`` with what ``csp-tf tune`` chose on the val split of the real ``places`` set
    (Sup. Only (grid), 5 % labels, 8 trials; docs/results.md): a 512-wide FFN without dropout,
    finest scale 1°, and 10 fine-tuning epochs, raised to at least 1500 steps."""
    cfg = demo()
    cfg.location_encoder.hidden_dim = 512
    cfg.location_encoder.dropout = 0.0
    cfg.location_encoder.position.min_radius = 1.0
    cfg.finetune.epochs, cfg.finetune.min_steps = 10, 1500
    return cfg
