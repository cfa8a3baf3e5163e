"""One config object for csp-tf: dataclasses that flow CLI -> trainer -> TFX pipeline.

``ExperimentConfig`` composes the parts (after the TF Model Garden's ``ExperimentConfig``).
Field names follow the reference code's flags (``frequency_num``, ``min_radius``, ...); the
defaults are the reference *parser* defaults unless noted, and the named presets
(``inat2018``, ``fmow``, ``demo``) carry the values of the authors' two scripts
(``../shared/csp/SPEC.md`` §10). Configs are data: ``to_dict``/``from_dict``, YAML/JSON on
disk, ``override`` with dotted keys (unknown keys raise), ``validate`` with messages that name
the field and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping

import yaml


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and the value."""


@dataclass
class PositionEncoderConfig:
    """Position encoder: (lon, lat) degrees -> fixed features (SPEC §2, ENCODERS_EXTRA).

    Attributes:
      type: registry name (``gridcell``, ``theory``, ``sphereM+``, ``spherical_harmonics`` ...).
      frequency_num: S, number of scales.
      min_radius / max_radius: λ_min / λ_max of the geometric schedule (degrees for the
        Space2Vec encoders, radian multiples for Sphere2Vec; see each encoder's docstring).
      freq_init: ``geometric`` | ``nerf`` | ``random``.
      num_rbf_anchor_pts / rbf_kernel_size: rbf anchors M and σ (rff: the variance, a quirk).
      legendre_polys: L for spherical harmonics (L² features).
      harmonics_calculation: ``analytic`` (SatCLIP, π-scaled m=0 quirk) | ``closed-form``.
      seed: seed of the random parts (rbf anchors, rff matrices, random schedule).
    """

    type: str = "gridcell"
    frequency_num: int = 32
    min_radius: float = 1e-6
    max_radius: float = 1.0
    freq_init: str = "geometric"
    num_rbf_anchor_pts: int = 200
    rbf_kernel_size: float = 1.0
    legendre_polys: int = 10
    harmonics_calculation: str = "analytic"
    tile_size: float = 1.0
    seed: int = 0


@dataclass
class LocationEncoderConfig:
    """Position encoder + network: ``ffn`` (Space2Vec FFN, SPEC §3.1) or ``fcnet`` (geo_net, §2.11)."""

    position: PositionEncoderConfig = field(default_factory=PositionEncoderConfig)
    network: str = "ffn"
    num_hidden_layer: int = 1
    hidden_dim: int = 512
    num_filts: int = 256
    dropout: float = 0.5
    activation: str = "relu"  # relu | leakyrelu (slope 0.2) | gelu (exact) | sigmoid | tanh
    use_layn: bool = True
    skip_connection: bool = True


@dataclass
class PretrainConfig:
    """Self-supervised pre-training (SPEC §5-§7.4).

    ``temperature_mode``: ``divide`` reproduces the reference (logits = cos/τ, so τ=20 flattens
    the softmax, a [QUIRK]); ``multiply`` is the corrected CLIP-style form (logits = cos·τ).
    ``sampler``: ``shuffle`` (label-free epochs over the whole pool, csp-tf's default) or
    ``balanced`` (the reference's ≤ max_num_exs_per_class per class, needs labels).
    """

    loss: str = "contsoftmax"  # contsoftmax | contsoftmaxsym | imgcontloss | imgcontlossnolocneg | imgcontlosssimcse | l2regress | none
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
    neg_rand_type: str = "spherical"  # uniform | spherical | sphericalold | spherical_fixed
    sampler: str = "shuffle"
    max_num_exs_per_class: int = 100
    # contsoftmax(sym): all-gather embeddings so in-batch negatives span the global batch.
    cross_replica_negatives: bool = False


@dataclass
class FinetuneConfig:
    """Supervised fine-tuning of the location encoder + class head (SPEC §7.5, §8).

    ``carry_optimizer_state``: the reference reuses one Adam across stages so its moments carry
    over ([QUIRK], default True); False starts fine-tuning with a fresh optimizer.
    ``image_classifier_labels``: which labels train the image classifier used for fusion:
    ``fewshot`` (the same label ratio, fMoW script) or ``full`` (all train labels, iNat script).

    Natural-data recipe (the defaults) vs the reference recipe (``inat2018`` / ``fmow`` presets):

    * ``location_loss``: ``softmax`` = softmax cross-entropy over classes with a class-head bias,
      so P(y|loc) keeps the empirical class prior; ``presence`` = the reference's per-class
      sigmoid "full loss" with random background locations (SPEC §7.5), which is right for a
      class-balanced evaluation and throws the prior away otherwise.
    * ``sampler``: ``shuffle`` = every labeled row once per epoch (natural frequencies);
      ``balanced`` = the reference's ≤ max_num_exs_per_class rows per class per epoch.
    * ``min_steps``: raise the epoch count until the stage runs at least this many steps (a 5 %
      label subset is 20× smaller than 100 %, so a fixed epoch count under-trains it).
    * ``lr_schedule``: ``exp`` = lr·lr_decay^epoch (reference); ``cosine`` = cosine decay to 0
      over the stage's epochs.
    * ``image_classifier_solver``: ``fullbatch`` = the linear probe fitted to convergence on the
      whole labeled set (full-batch Adam, L2 weight chosen on val from
      ``image_classifier_l2_grid``); ``minibatch`` = the reference-like mini-batch epochs.
    * ``fusion``: ``product`` = P(y|img)·P(y|loc) (SPEC §9); ``calibrated`` = softmax of
      α·log P(y|img) + β·log P(y|loc) − γ·log P(y) with (α, β, γ) chosen on val (the grid holds
      (1,0,0) and (0,1,0), so on val the fused score is never below the better of its parts).
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
    eval_frequency: int = 5
    location_loss: str = "softmax"
    min_steps: int = 0
    lr_schedule: str = "exp"
    image_classifier_solver: str = "fullbatch"
    image_classifier_l2: float = 1e-5
    image_classifier_l2_grid: str = "1e-6,1e-5,1e-4"
    image_classifier_steps: int = 1500
    image_classifier_fullbatch_lr: float = 0.2
    fusion: str = "calibrated"


@dataclass
class DataConfig:
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


@dataclass
class RuntimeConfig:
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
class ExperimentConfig:
    """Everything one run needs. Saved next to every artifact as ``config.yaml``."""

    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    location_encoder: LocationEncoderConfig = field(default_factory=LocationEncoderConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    # ----- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
        return _from_dict(cls, d, prefix="")

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
            text = f.read()
        d = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        if not isinstance(d, Mapping):
            raise ConfigError(f"config file {path!r} does not hold a mapping")
        return cls.from_dict(d)

    def override(self, overrides: Mapping[str, Any]) -> "ExperimentConfig":
        """Returns a copy with dotted keys replaced, e.g. {'pretrain.lr': 1e-4}."""
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise ConfigError(f"unknown config key {key!r}")
                node = node[p]
            if not isinstance(node, dict) or parts[-1] not in node:
                raise ConfigError(f"unknown config key {key!r}")
            node[parts[-1]] = value
        return ExperimentConfig.from_dict(d)

    def copy(self) -> "ExperimentConfig":
        return copy.deepcopy(self)

    # ----- validation ----------------------------------------------------------------------
    def validate(self) -> "ExperimentConfig":
        """Raises ConfigError naming the field and value of the first inconsistency."""
        from csp_tf.encoders import ENCODERS  # local: keeps config import free of TF

        pe = self.location_encoder.position
        if pe.type not in ENCODERS:
            raise ConfigError(
                f"location_encoder.position.type={pe.type!r} is not a known encoder; "
                f"known: {', '.join(ENCODERS.names())}")
        _positive("location_encoder.position.frequency_num", pe.frequency_num)
        _positive("location_encoder.position.min_radius", pe.min_radius)
        _positive("location_encoder.position.max_radius", pe.max_radius)
        if pe.min_radius > pe.max_radius:
            raise ConfigError(
                f"location_encoder.position.min_radius={pe.min_radius} exceeds max_radius={pe.max_radius}")
        _choice("location_encoder.position.freq_init", pe.freq_init, ("geometric", "nerf", "random"))
        le = self.location_encoder
        _choice("location_encoder.network", le.network, ("ffn", "fcnet"))
        _positive("location_encoder.num_filts", le.num_filts)
        _positive("location_encoder.hidden_dim", le.hidden_dim)
        _choice("location_encoder.activation", le.activation,
                ("relu", "leakyrelu", "gelu", "sigmoid", "tanh"))
        _unit_interval("location_encoder.dropout", le.dropout)
        pt = self.pretrain
        _choice("pretrain.loss", pt.loss, PRETRAIN_LOSSES)
        _positive("pretrain.lr", pt.lr)
        _non_negative("pretrain.epochs", pt.epochs)
        _positive("pretrain.batch_size", pt.batch_size)
        for name in ("temp_inbatch", "temp_negloc", "temp_simcse"):
            _positive(f"pretrain.{name}", getattr(pt, name))
        _choice("pretrain.temperature_mode", pt.temperature_mode, ("divide", "multiply"))
        _positive("pretrain.num_neg_rand_loc", pt.num_neg_rand_loc)
        _choice("pretrain.neg_rand_type", pt.neg_rand_type, NEG_RAND_TYPES)
        _choice("pretrain.sampler", pt.sampler, ("shuffle", "balanced"))
        if pt.cross_replica_negatives and pt.loss not in ("contsoftmax", "contsoftmaxsym"):
            raise ConfigError("pretrain.cross_replica_negatives needs loss contsoftmax or "
                              f"contsoftmaxsym, not {pt.loss!r}")
        ft = self.finetune
        _positive("finetune.lr", ft.lr)
        _non_negative("finetune.epochs", ft.epochs)
        _positive("finetune.batch_size", ft.batch_size)
        if not 0.0 < ft.label_ratio <= 1.0:
            raise ConfigError(f"finetune.label_ratio={ft.label_ratio} must be in (0, 1]")
        _choice("finetune.neg_rand_type", ft.neg_rand_type, NEG_RAND_TYPES)
        _choice("finetune.sampler", ft.sampler, ("shuffle", "balanced"))
        _choice("finetune.image_classifier_labels", ft.image_classifier_labels, ("fewshot", "full"))
        _choice("finetune.location_loss", ft.location_loss, LOCATION_LOSSES)
        _non_negative("finetune.min_steps", ft.min_steps)
        _choice("finetune.lr_schedule", ft.lr_schedule, ("exp", "cosine"))
        _choice("finetune.image_classifier_solver", ft.image_classifier_solver,
                ("fullbatch", "minibatch"))
        _non_negative("finetune.image_classifier_l2", ft.image_classifier_l2)
        parse_float_list("finetune.image_classifier_l2_grid", ft.image_classifier_l2_grid)
        _positive("finetune.image_classifier_steps", ft.image_classifier_steps)
        _positive("finetune.image_classifier_fullbatch_lr", ft.image_classifier_fullbatch_lr)
        _choice("finetune.fusion", ft.fusion, FUSIONS)
        _non_negative("data.feature_dim", self.data.feature_dim)
        _non_negative("data.num_classes", self.data.num_classes)
        rt = self.runtime
        _choice("runtime.jit_compile", rt.jit_compile, ("auto", "on", "off"))
        _choice("runtime.mixed_precision", rt.mixed_precision, ("auto", "on", "off", "bfloat16"))
        _choice("runtime.distribution", rt.distribution, ("default", "mirrored", "multi_worker"))
        _positive("runtime.steps_per_execution", rt.steps_per_execution)
        return self


PRETRAIN_LOSSES = ("contsoftmax", "contsoftmaxsym", "imgcontloss", "imgcontlossnolocneg",
                   "imgcontlosssimcse", "l2regress", "none")
NEG_RAND_TYPES = ("uniform", "spherical", "sphericalold", "spherical_fixed")
LOCATION_LOSSES = ("softmax", "presence")
FUSIONS = ("calibrated", "product")


def parse_float_list(name: str, text: str) -> list:
    """``"1e-4,1e-3"`` → [1e-4, 1e-3]; ConfigError naming the field otherwise (each ≥ 0)."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected comma-separated numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"{name}={text!r}: give at least one finite number >= 0")
    return values


def _positive(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a finite number > 0")


def _non_negative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a finite number >= 0")


def _unit_interval(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name}={value!r} must be in [0, 1)")


def _choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(str, allowed))}")


def _from_dict(cls, d: Mapping[str, Any], prefix: str):
    if not isinstance(d, Mapping):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {prefix + key!r}")
        f = fields[key]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[key] = _from_dict(f.default_factory, value, prefix + key + ".")
        else:
            default = f.default if f.default is not dataclasses.MISSING else None
            kwargs[key] = _coerce(prefix + key, value, default)
    return cls(**kwargs)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML/CLI values arrive as strings or ints; coerce them to the field's default type."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "t", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "f", "0", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            if isinstance(value, bool):  # YAML reads a bare on/off as a boolean
                return "on" if value else "off"
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} should be a {type(default).__name__}") from None
    return value


# ----- named presets ---------------------------------------------------------------------------
PRESETS: Dict[str, Callable[[], ExperimentConfig]] = {}


def register_preset(name: str):
    def decorator(fn: Callable[[], ExperimentConfig]):
        if name in PRESETS:
            raise KeyError(f"preset {name!r} already registered")
        PRESETS[name] = fn
        return fn

    return decorator


def get_preset(name: str) -> ExperimentConfig:
    import csp_tf.presets  # noqa: F401  (registers the named presets)

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    cfg = PRESETS[name]()
    cfg.name = name
    return cfg
