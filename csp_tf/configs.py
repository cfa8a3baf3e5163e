"""One config object for csp-tf: dataclasses that flow CLI -> trainer -> TFX pipeline.

``ExperimentConfig`` composes the parts (after the TF Model Garden's ``ExperimentConfig``).
Field names follow the reference code's flags (``frequency_num``, ``min_radius``, ...); the
named presets (``csp_tf/presets.py``) carry the values of the authors' two scripts
(docs/reference.md §10). Configs are data: ``to_dict``/``from_dict``, YAML/JSON on
disk, ``override`` with dotted keys (unknown keys raise), ``validate`` with messages that name
the field and the value.

The position encoder is a OneOf (the Model Garden pattern): ``location_encoder.position.type``
picks the encoder and ``location_encoder.position.<type>`` holds that encoder's options, e.g.
``--set location_encoder.position.type=rbf --set location_encoder.position.rbf.anchors=uniform``.
``location_encoder.position.<option>`` is short for the selected encoder's option. Changing
the type keeps the options the two encoders share (the radii carry from gridcell to theory).

This module holds the stage configs, their validation and the presets' lookup. The pieces
under them live in two modules, whose names are re-exported here: ``csp_tf.config_tree`` (the
generic machinery: ``ConfigError``, ``ConfigNode``, ``to_dict``/``from_dict``, overrides and
value coercion) and ``csp_tf.encoder_options`` (``PositionEncoderConfig``, one options
dataclass per encoder, ``ENCODER_OPTIONS``, ``OWN_HEADS``, ``NETWORKS``).
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping

import yaml

from csp_tf.config_tree import REMOVED_KEYS, ConfigError, ConfigNode, _assign, _child, _flatten
from csp_tf.encoder_options import (  # noqa: F401  (re-exported: importable from here as before)
    ENCODER_OPTIONS, MAP_RANGE, NETWORKS, OWN_HEADS, HarmonicsOptions, HexaGridOptions,
    MapRangeOptions, NerfOptions, PositionEncoderConfig, RBFOptions, RFFOptions, ScheduleOptions,
    TileOptions)
from csp_tf.presets import PRESETS


@dataclass
class LocationEncoderConfig(ConfigNode):
    """Position encoder + network (docs/reference.md §2-§3).

    ``network``: ``auto`` (the encoder's own head for theorydiag/hexagridcell, else ``ffn``),
    ``ffn`` (Space2Vec FFN, §3.1), ``fcnet`` (geo_net, §2.11), ``diag`` (theorydiag's
    block-diagonal head, §2.5; ``use_postmat`` adds its D×D post-matrix), ``linear``
    (hexagridcell's Linear → act → dropout head, §2.6), ``capsules`` (GeoCLIP's per-scale MLPs)
    or ``siren`` (Rußwurm et al.'s SirenNet, §13.5: ``num_hidden_layer`` ≥ 1 sine layers of
    width ``hidden_dim``, ω = 30 in the first and 1 after it, dropout ``dropout`` before each
    sine, then a linear layer to ``num_filts``; ``activation``, ``use_layn`` and
    ``skip_connection`` do not apply). SH + SIREN: ``position.type=spherical_harmonics``,
    ``network=siren``.
    ``capacity``: ``fixed`` builds and trains what the config says; ``auto`` sets the finest
    scale and the fine-tuning epochs of each fine-tuning stage from its labeled places
    (``csp_tf.capacity``: λ_min ≈ 4× their median nearest-neighbour distance; ≥ 512 wide, no
    dropout; ≥ 750 steps and ≥ 30 epochs).
    """

    position: PositionEncoderConfig = field(default_factory=PositionEncoderConfig)
    network: str = "auto"
    num_hidden_layer: int = 1
    hidden_dim: int = 512
    num_filts: int = 256
    dropout: float = 0.5
    # fcnet's ResLayer dropout: the reference fixes it at 0.5 and ignores ``dropout``
    # (docs/reference.md §2.11)
    fcnet_dropout: float = 0.5
    activation: str = "relu"  # relu | leakyrelu (slope 0.2) | gelu (exact) | sigmoid | tanh
    use_layn: bool = True
    skip_connection: bool = True
    use_postmat: bool = True
    capacity: str = "fixed"  # fixed | auto (csp_tf.capacity)

    def resolved_network(self) -> str:
        """The network to build; ConfigError where the encoder and the network do not fit."""
        kind, net = self.position.type, self.network
        own = OWN_HEADS.get(kind)
        if net == "auto":
            return own or "ffn"
        if (own or net) != net or (own is None and net in OWN_HEADS.values()):
            want = own or "auto, ffn, fcnet or siren"
            raise ConfigError(f"location_encoder.network={net!r} does not fit position.type="
                              f"{kind!r}; use {want} (docs/reference.md §2.5/§2.6: theorydiag and "
                              "hexagridcell have their own head, no FFN)")
        return net

    def model_fields(self) -> Dict[str, Any]:
        """The fields that decide the built encoder: ``fcnet_dropout`` only where the network is
        an FCNet, so a gridcell stage stays comparable (and reusable) when it changes.
        ``capacity`` is not one: ``auto`` resolves to the explicit fields it sets."""
        d = self.to_dict()
        d.pop("capacity")
        if self.resolved_network() != "fcnet":
            d.pop("fcnet_dropout")
        return d


@dataclass
class PretrainConfig(ConfigNode):
    """Self-supervised pre-training (docs/reference.md §5-§7.4).

    ``temperature_mode``: ``divide`` reproduces the reference (logits = cos/τ, so τ=20 flattens
    the softmax, a [QUIRK]); ``multiply`` is the corrected CLIP-style form (logits = cos·τ).
    ``sampler``: ``shuffle`` (label-free epochs over the whole pool, csp-tf's default) or
    ``balanced`` (the reference's ≤ max_num_exs_per_class per class, needs labels).
    """

    loss: str = "contsoftmax"  # csp_tf.losses.PRETRAIN_LOSSES
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 1024
    temp_inbatch: float = 1.0
    temp_negloc: float = 1.0
    temp_simcse: float = 1.0
    temperature_mode: str = "divide"
    rand_sample_weight: float = 1.0
    simcse_weight: float = 0.0
    num_neg_rand_loc: int = 1
    neg_rand_type: str = "spherical"  # csp_tf.negatives.NEG_RAND_TYPES
    sampler: str = "shuffle"
    max_num_exs_per_class: int = 100
    # contsoftmax(sym): all-gather embeddings so in-batch negatives span the global batch.
    cross_replica_negatives: bool = False


@dataclass
class FinetuneConfig(ConfigNode):
    """Supervised fine-tuning of the location encoder + class head (docs/reference.md §7.5, §8).

    ``carry_optimizer_state``: the reference reuses one Adam across stages so its moments carry
    over ([QUIRK], default True); False starts fine-tuning with a fresh optimizer.
    ``image_classifier_labels``: which labels train the image classifier used for fusion:
    ``fewshot`` (the same label ratio, fMoW script) or ``full`` (all train labels, iNat script).

    Natural-data recipe (the defaults) vs the reference recipe (``inat2018`` / ``fmow`` presets):

    * ``location_loss``: ``softmax`` = softmax cross-entropy over classes with a class-head bias,
      so P(y|loc) keeps the empirical class prior; ``presence`` = the reference's per-class
      sigmoid "full loss" with random background locations (docs/reference.md §7.5), which is right
      for a class-balanced evaluation and throws the prior away otherwise.
    * ``sampler``: ``shuffle`` = every labeled row once per epoch (natural frequencies);
      ``balanced`` = the reference's ≤ max_num_exs_per_class rows per class per epoch.
    * ``min_steps``: raise the epoch count until the stage runs at least this many steps (a 5 %
      label subset is 20× smaller than 100 %, so a fixed epoch count under-trains it).
    * ``lr_schedule``: ``exp`` = lr·lr_decay^epoch (reference); ``cosine`` = cosine decay to 0
      over the stage's epochs.
    * ``image_classifier_solver``: ``fullbatch`` = the linear probe fitted to convergence on the
      whole labeled set (full-batch Adam, L2 weight chosen on val from
      ``image_classifier_l2_grid``; rounds of ``image_classifier_steps`` until the objective
      stops falling by 1 %, at most ``image_classifier_max_rounds``); ``minibatch`` = the
      reference-like mini-batch epochs.
    * ``fusion``: ``product`` = P(y|img)·P(y|loc) (docs/reference.md §9); ``calibrated`` = softmax
      of α·log P(y|img) + β·log P(y|loc) − γ·log P(y) with (α, β, γ) chosen on val (the grid holds
      (1,0,0) and (0,1,0), so on val the fused score is never below the better of its parts).
    * ``place_memory``: ``calibrated`` = the model keeps the labeled places and, outside
      training, mixes the k nearest places' votes into the softmax P(y|loc), with (k, distance
      power, concentration) chosen on val from a grid that holds "off" (``csp_tf.models.
      place_memory``); ``off`` = the network alone; ``auto`` = ``calibrated`` with the softmax
      head, ``off`` with ``presence`` (``calibrated`` needs ``location_loss='softmax'``).
    * ``head_init``: ``random`` = the class head starts from its initial value (reference);
      ``probe`` = before the first fine-tuning step the class head is fitted to convergence on
      the frozen encoder's embeddings of the labeled rows (multinomial logistic regression, L2
      weight chosen on val from ``head_probe_l2_grid``; needs ``location_loss='softmax'``), so
      fine-tuning starts from a head that reads the pre-trained features (linear probing, then
      fine-tuning).
    * ``freeze_encoder``: the fine-tuning steps update the class head only; with
      ``head_init='probe'`` there are no steps: the probe, fitted to convergence, is the head
      (a linear probe of the pre-trained embedding). False = the encoder trains too (reference).
    * ``location_jitter``: each fine-tuning step moves the labeled locations by Gaussian noise
      of this standard deviation in degrees (``csp_tf.location_jitter``), so a label is learned
      for a neighbourhood of its place; 0 = the locations as given (reference).
    * ``location_jitter_per_spacing``: c > 0 adds c·d_i to row i's σ, d_i the distance from
      its place to the nearest other labeled place of the stage (at most 2°), so each label
      spreads over about its own neighbourhood; 0 = off.
    The evaluation period during fine-tuning is the experiment protocol's ``--eval-every``.
    """

    lr: float = 1e-3
    lr_decay: float = 0.98
    epochs: int = 30
    batch_size: int = 1024
    label_ratio: float = 1.0
    rand_sample_weight: float = 1.0
    neg_rand_type: str = "spherical"
    sampler: str = "shuffle"  # shuffle | balanced (reference)
    max_num_exs_per_class: int = 100
    carry_optimizer_state: bool = True
    image_classifier_labels: str = "fewshot"
    image_classifier_epochs: int = 30
    image_classifier_lr: float = 1e-3
    location_loss: str = "softmax"
    min_steps: int = 0
    lr_schedule: str = "exp"
    image_classifier_solver: str = "fullbatch"
    image_classifier_l2: float = 1e-5
    image_classifier_l2_grid: str = "1e-6,1e-5,1e-4"
    image_classifier_steps: int = 1500
    image_classifier_max_rounds: int = 4
    image_classifier_fullbatch_lr: float = 0.2
    fusion: str = "calibrated"
    place_memory: str = "auto"
    head_init: str = "random"  # random (reference) | probe
    head_probe_l2_grid: str = "1e-6,1e-5,1e-4,1e-3,1e-2"
    freeze_encoder: bool = False
    location_jitter: float = 0.0  # degrees; 0 = off (reference)
    location_jitter_per_spacing: float = 0.0  # × nearest-labeled-place distance; 0 = off


@dataclass
class DataConfig(ConfigNode):
    """Where the TFRecords live and their shape (docs/data.md)."""

    data_root: str = ""
    feature_dim: int = 0  # 0 = read from the data root's metadata.json
    num_classes: int = 0  # 0 = read from the data root's metadata.json
    # Standardise image features inside the model with the per-dimension mean/std the ingest
    # computed over every row (metadata.json): the SavedModel applies them too, so there is no
    # train/serve skew. False = raw features, as the reference (parity presets).
    standardize_features: bool = True
    shuffle_buffer: int = 10000
    deterministic: bool = True  # a fixed read order is what lets a run resume mid-epoch exactly
    # Label-free pre-training pools up to this size (lon/lat + features, float32) are read into
    # memory sorted by id and shuffled per epoch by the seed: the same batches whatever the file
    # layout (ExampleGen reshards on every run). Larger pools stream their files in order
    # through a shuffle buffer, so their batches depend on the layout. 0 = always stream.
    pretrain_in_memory_mb: int = 1024


@dataclass
class RuntimeConfig(ConfigNode):
    """How training runs: seeds, XLA, precision, distribution, logging, checkpoints.

    ``jit_compile``: ``auto`` (on when a GPU is present), ``on`` or ``off``.
    ``mixed_precision``: ``auto`` (mixed_float16 on GPU), ``on`` (mixed_float16), ``off`` or
    ``bfloat16`` (mixed_bfloat16: bf16 matmuls; position encoding and losses stay float32).
    ``distribution``: ``default`` | ``mirrored`` | ``multi_worker`` (reads TF_CONFIG).
    """

    seed: int = 0
    jit_compile: str = "auto"
    mixed_precision: str = "off"
    distribution: str = "default"
    checkpoint_every_steps: int = 0  # 0 = only at the end of each epoch
    log_every_steps: int = 50
    steps_per_execution: int = 1  # steps per tf.function call (one host sync per call)
    progress: bool = True
    top_k: int = 5


@dataclass
class ExperimentConfig(ConfigNode):
    """Everything one run needs. Saved next to every artifact as ``config.yaml``."""

    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    location_encoder: LocationEncoderConfig = field(default_factory=LocationEncoderConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    # ----- (de)serialisation -------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str) -> str:
        """Writes YAML (or JSON when ``path`` ends in .json); creates parent directories."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            if path.endswith(".json"):
                json.dump(self.to_dict(), f, indent=2)
            else:
                f.write(self.to_yaml())
        return path

    @classmethod
    def load(cls, path: str) -> "ExperimentConfig":
        if not os.path.exists(path):
            raise ConfigError(f"config file {path!r} does not exist")
        with open(path) as f:
            d = yaml.safe_load(f)  # JSON is YAML
        if not isinstance(d, Mapping):
            raise ConfigError(f"config file {path!r} does not hold a mapping")
        return cls.from_dict(d)

    def override(self, overrides: Mapping[str, Any]) -> "ExperimentConfig":
        """Returns a copy with dotted keys replaced, e.g. {'pretrain.lr': 1e-4}. Encoder
        types are set first, so ``position.type`` and ``position.<type>.<option>`` combine."""
        cfg = self.copy()
        for key, value in sorted(overrides.items(), key=lambda kv: not kv[0].endswith(".type")):
            if key in REMOVED_KEYS:
                raise ConfigError(f"config key {key!r} was removed: {REMOVED_KEYS[key]}")
            *path, last = key.split(".")
            node = cfg
            for i, part in enumerate(path):
                node = _child(node, part, ".".join(path[:i + 1]), key)
            _assign(node, last, value, key)
        return cfg

    def copy(self) -> "ExperimentConfig":
        return copy.deepcopy(self)

    # ----- validation ----------------------------------------------------------------------
    def validate(self) -> "ExperimentConfig":
        """Raises ConfigError naming the field and value of the first inconsistency."""
        choices = _choices()
        for key, value in _flatten(self.to_dict()).items():
            name = key.rsplit(".", 1)[-1]
            number = isinstance(value, (int, float)) and math.isfinite(value)
            if name in choices and value not in choices[name]:
                raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices[name])}")
            if name in _POSITIVE and not (number and value > 0):
                raise ConfigError(f"{key}={value!r} must be a finite number > 0")
            if name in _NON_NEGATIVE and not (number and value >= 0):
                raise ConfigError(f"{key}={value!r} must be a finite number >= 0")
        le, pe, ft = self.location_encoder, self.location_encoder.position, self.finetune
        if getattr(pe.options, "min_radius", 0) > getattr(pe.options, "max_radius", math.inf):
            raise ConfigError(f"location_encoder.position.{pe.type}.min_radius={pe.min_radius} "
                              f"exceeds max_radius={pe.max_radius}")
        if le.resolved_network() == "diag" and le.num_filts % pe.frequency_num:
            raise ConfigError(f"location_encoder.num_filts={le.num_filts} must be a multiple of "
                              f"location_encoder.position.{pe.type}.frequency_num="
                              f"{pe.frequency_num} (docs/reference.md §2.5)")
        if le.resolved_network() == "siren" and le.num_hidden_layer < 1:
            raise ConfigError(f"location_encoder.num_hidden_layer={le.num_hidden_layer} must be "
                              ">= 1 with network='siren' (its first sine layer)")
        for key in ("dropout", "fcnet_dropout"):
            if not 0.0 <= getattr(le, key) < 1.0:
                raise ConfigError(f"location_encoder.{key}={getattr(le, key)!r} must be in [0, 1)")
        pt = self.pretrain
        if pt.cross_replica_negatives and pt.loss not in ("contsoftmax", "contsoftmaxsym"):
            raise ConfigError("pretrain.cross_replica_negatives needs loss contsoftmax or "
                              f"contsoftmaxsym, not {pt.loss!r}")
        if not 0.0 < ft.label_ratio <= 1.0:
            raise ConfigError(f"finetune.label_ratio={ft.label_ratio} must be in (0, 1]")
        if ft.place_memory == "calibrated" and ft.location_loss != "softmax":
            raise ConfigError("finetune.place_memory='calibrated' mixes votes into a softmax "
                              f"P(y|loc); finetune.location_loss={ft.location_loss!r} has per-class "
                              "sigmoids: set finetune.place_memory=off")
        if ft.head_init == "probe" and ft.location_loss != "softmax":
            raise ConfigError("finetune.head_init='probe' fits a softmax class head; "
                              f"finetune.location_loss={ft.location_loss!r} has per-class "
                              "sigmoids: set finetune.head_init=random")
        parse_float_list("finetune.image_classifier_l2_grid", ft.image_classifier_l2_grid)
        parse_float_list("finetune.head_probe_l2_grid", ft.head_probe_l2_grid)
        return self

    def uses_place_memory(self) -> bool:
        """Whether fine-tuning fills and calibrates a place memory (``finetune.place_memory``)."""
        ft = self.finetune
        wanted = ft.place_memory == "calibrated" or (
            ft.place_memory == "auto" and ft.location_loss == "softmax")
        return wanted and ft.epochs > 0


# Checked by the last part of the key, in every section that has it.
_POSITIVE = {"frequency_num", "min_radius", "max_radius", "rbf_kernel_size", "num_rbf_anchor_pts",
             "legendre_polys", "tile_size", "embedding_size", "num_filts", "hidden_dim", "lr",
             "batch_size", "temp_inbatch", "temp_negloc", "temp_simcse", "num_neg_rand_loc",
             "image_classifier_steps", "image_classifier_max_rounds", "image_classifier_fullbatch_lr", "steps_per_execution",
             "grid_levels", "grid_coarsest", "grid_finest", "grid_features", "grid_log2_table_size"}
_NON_NEGATIVE = {"epochs", "min_steps", "image_classifier_l2", "feature_dim", "num_classes",
                 "pretrain_in_memory_mb", "location_jitter", "grid_init",
                 "location_jitter_per_spacing"}
# The keys of csp_tf.models.layers.ACTIVATIONS (a test keeps them equal): importing csp_tf.models
# here would close an import cycle through csp_model, which imports this module.
ACTIVATIONS = ("relu", "leakyrelu", "gelu", "sigmoid", "tanh")


def _choices() -> Dict[str, tuple]:
    """The allowed strings; the lists owned by TF modules are imported here, so importing the
    config stays free of TF."""
    from csp_tf.encoders.base import FREQ_INITS
    from csp_tf.encoders.rff import RFF_KERNEL_MODES
    from csp_tf.encoders.spherical_harmonics import HARMONICS_CALCULATIONS
    from csp_tf.losses import PRETRAIN_LOSSES
    from csp_tf.negatives import NEG_RAND_TYPES

    return {"freq_init": FREQ_INITS, "anchors": ("data", "uniform"),
            "rff_kernel_mode": RFF_KERNEL_MODES, "harmonics_calculation": HARMONICS_CALCULATIONS,
            "network": NETWORKS, "activation": ACTIVATIONS, "loss": PRETRAIN_LOSSES,
            "temperature_mode": ("divide", "multiply"), "neg_rand_type": NEG_RAND_TYPES,
            "sampler": ("shuffle", "balanced"), "image_classifier_labels": ("fewshot", "full"),
            "location_loss": ("softmax", "presence"), "lr_schedule": ("exp", "cosine"),
            "image_classifier_solver": ("fullbatch", "minibatch"),
            "fusion": ("calibrated", "product"), "place_memory": ("auto", "calibrated", "off"),
            "head_init": ("random", "probe"),
            "capacity": ("fixed", "auto"),
            "jit_compile": ("auto", "on", "off"),
            "mixed_precision": ("auto", "on", "off", "bfloat16"),
            "distribution": ("default", "mirrored", "multi_worker")}


def get_preset(name: str) -> ExperimentConfig:
    """A named preset (``csp_tf/presets.py``): the defaults with the preset's keys set."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    cfg = ExperimentConfig().override(PRESETS[name])
    cfg.name = name
    return cfg


def parse_float_list(name: str, text: str) -> list:
    """``"1e-4,1e-3"`` → [1e-4, 1e-3]; ConfigError naming the field otherwise (each ≥ 0)."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected comma-separated numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"{name}={text!r}: give at least one finite number >= 0")
    return values


