"""One config object for csp-tf: dataclasses that flow CLI -> trainer -> TFX pipeline.

``ExperimentConfig`` composes the parts (after the TF Model Garden's ``ExperimentConfig``).
Field names follow the reference code's flags (``frequency_num``, ``min_radius``, ...); the
named presets (``csp_tf/presets.py``) carry the values of the authors' two scripts
(``../shared/csp/SPEC.md`` §10). Configs are data: ``to_dict``/``from_dict``, YAML/JSON on
disk, ``override`` with dotted keys (unknown keys raise), ``validate`` with messages that name
the field and the value.

The position encoder is a OneOf (the Model Garden pattern): ``location_encoder.position.type``
picks the encoder and ``location_encoder.position.<type>`` holds that encoder's options, e.g.
``--set location_encoder.position.type=rbf --set location_encoder.position.rbf.anchors=uniform``.
``location_encoder.position.<option>`` is short for the selected encoder's option. Changing
the type keeps the options the two encoders share (the radii carry from gridcell to theory).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import yaml

from csp_tf.presets import PRESETS


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and the value."""


class ConfigNode:
    """``to_dict``/``from_dict`` of a config dataclass and of everything nested in it."""

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = ""):
        _mapping(d, prefix)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in d.items():
            if prefix + key in REMOVED_KEYS:
                continue  # an old saved config: the field never had an effect
            if key not in fields:
                raise ConfigError(f"unknown config key {prefix + key!r}")
            node = _node_type(fields[key])
            kwargs[key] = (node.from_dict(value, prefix + key + ".") if node
                           else _coerce(prefix + key, value, _default(fields[key])))
        return cls(**kwargs)


# ----- position encoder options: one dataclass per kind of encoder --------------------------
MAP_RANGE = [-180.0, 180.0, -90.0, 90.0]


@dataclass
class ScheduleOptions(ConfigNode):
    """Encoders on the ``_cal_freq_list`` schedule (SPEC §2.1): S, λ_min, λ_max (degrees for
    the Space2Vec encoders, radian multiples for Sphere2Vec). ``seed`` draws the ``random``
    schedule; ``frequencies`` gives the f_s outright (a saved model's)."""

    frequency_num: int = 32
    min_radius: float = 1e-6
    max_radius: float = 1.0
    freq_init: str = "geometric"  # geometric | nerf | random
    seed: int = 0
    frequencies: Optional[List[float]] = None


@dataclass
class HexaGridOptions(ConfigNode):
    """``hexagridcell`` (SPEC §2.6): f_s = λ_max^{-s/(S-1)}, no λ_min."""

    frequency_num: int = 32
    max_radius: float = 360.0


@dataclass
class NerfOptions(ConfigNode):
    frequency_num: int = 32


@dataclass
class MapRangeOptions(ConfigNode):
    """``naive``, ``wrap``, ``geo_net_fft``, ``geo_net_3d``: the min-max range to [-1, 1]."""

    map_range: List[float] = field(default_factory=lambda: list(MAP_RANGE))


@dataclass
class RBFOptions(ConfigNode):
    """``rbf`` (SPEC §2.8): M Gaussian kernels of width σ (degrees) around anchors.
    ``anchors``: ``data`` (M training locations, the reference; csp-tf fills ``anchor_pts``
    from the data root's train split with ``seed``) or ``uniform`` (area-uniform on the sphere
    from ``seed``). ``anchor_pts``: the (M, 2) anchors themselves, saved with the model."""

    num_rbf_anchor_pts: int = 200
    rbf_kernel_size: float = 1.0
    anchors: str = "data"
    seed: int = 0
    anchor_pts: Optional[List[List[float]]] = None


@dataclass
class RFFOptions(ConfigNode):
    """``rff`` (SPEC §2.9): ω ~ N(0, k·I) (``variance``, the [QUIRK]) or N(0, k⁻²·I)
    (``bandwidth``), k = ``rbf_kernel_size``; ω, b drawn from ``seed`` unless given."""

    frequency_num: int = 32
    rbf_kernel_size: float = 1.0
    rff_kernel_mode: str = "variance"
    map_range: List[float] = field(default_factory=lambda: list(MAP_RANGE))
    seed: int = 0
    omega: Optional[List[List[float]]] = None
    bias: Optional[List[float]] = None


@dataclass
class HarmonicsOptions(ConfigNode):
    """``spherical_harmonics`` (ENCODERS_EXTRA §5): L² features."""

    legendre_polys: int = 10
    harmonics_calculation: str = "analytic"  # analytic (SatCLIP) | closed-form


@dataclass
class TileOptions(ConfigNode):
    """``tile`` (ENCODERS_EXTRA §4): cell size (degrees) and the table's width."""

    tile_size: float = 1.0
    embedding_size: int = 64
    seed: int = 0


_SCHEDULED = ("gridcell", "gridcellnorm", "theory", "theorynorm", "theorydiag", "sphereC",
              "sphereC+", "sphereM", "sphereM+", "dfs")
# Every registered encoder (csp_tf.encoders.ENCODERS; a test keeps the two equal) -> options.
ENCODER_OPTIONS: Dict[str, type] = {
    **{name: ScheduleOptions for name in _SCHEDULED},
    **{name: MapRangeOptions for name in ("naive", "wrap", "geo_net_fft", "geo_net_3d")},
    "hexagridcell": HexaGridOptions, "nerf": NerfOptions, "rbf": RBFOptions, "rff": RFFOptions,
    "spherical_harmonics": HarmonicsOptions, "tile": TileOptions,
}
# Old saved configs have one flat section: each encoder takes the options it has, as before.
_LEGACY_FLAT = {f.name for c in ENCODER_OPTIONS.values() for f in dataclasses.fields(c)}


class PositionEncoderConfig:
    """OneOf: ``type`` names the encoder, ``options`` holds its options dataclass.

    ``PositionEncoderConfig(type="gridcell", min_radius=0.1)`` and ``pe.min_radius`` read and
    write the selected encoder's options; assigning ``type`` switches encoder and keeps the
    options the two share. Serialised as ``{"type": t, t: {...}}``.
    """

    def __init__(self, type: str = "gridcell", options: Optional[ConfigNode] = None, **flat):
        _check_type(type)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "options", options or ENCODER_OPTIONS[type]())
        for key, value in flat.items():
            setattr(self, key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "type":
            _check_type(value)
            old, new = self.options, ENCODER_OPTIONS[value]()
            for f in dataclasses.fields(new):
                if hasattr(old, f.name):
                    setattr(new, f.name, copy.deepcopy(getattr(old, f.name)))
            object.__setattr__(self, "options", new)
        elif name != "options":
            self._option(name)
            return setattr(self.options, name, value)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("type", "options"):
            raise AttributeError(name)
        self._option(name)
        return getattr(self.options, name)

    def _option(self, name: str) -> None:
        names = [f.name for f in dataclasses.fields(self.options)]
        if name not in names:
            raise ConfigError(f"location_encoder.position.{name}: encoder {self.type!r} has no "
                              f"such option; its options: {', '.join(names)}")

    def __eq__(self, other) -> bool:
        return isinstance(other, PositionEncoderConfig) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"PositionEncoderConfig(type={self.type!r}, options={self.options!r})"

    def to_dict(self) -> Dict[str, Any]:
        return {"type": self.type, self.type: self.options.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "") -> "PositionEncoderConfig":
        d = dict(_mapping(d, prefix))
        kind = d.pop("type", "gridcell")
        _check_type(kind)
        options = ENCODER_OPTIONS[kind]
        names = {f.name for f in dataclasses.fields(options)}
        merged = {k: v for k, v in d.items() if k in names}  # an old flat section
        merged.update(_mapping(d.pop(kind, {}), prefix + kind))
        for key in d:
            if key in ENCODER_OPTIONS:
                raise ConfigError(f"config section {prefix + key!r} is given but {prefix}type="
                                  f"{kind!r}; set the type to {key!r} or move the options")
            if key not in names and key not in _LEGACY_FLAT:
                raise ConfigError(f"unknown config key {prefix + key!r} (encoder {kind!r} has: "
                                  f"{', '.join(sorted(names))})")
        return cls(kind, options.from_dict(merged, prefix + kind + "."))


def _check_type(kind: str) -> None:
    if kind not in ENCODER_OPTIONS:
        raise ConfigError(f"location_encoder.position.type={kind!r} is not a known encoder; "
                          f"known: {', '.join(sorted(ENCODER_OPTIONS))}")


# ----- the sections -------------------------------------------------------------------------
# Encoders with their own trainable head instead of the FFN (SPEC §2.5, §2.6) -> network name.
OWN_HEADS = {"theorydiag": "diag", "hexagridcell": "linear"}
NETWORKS = ("auto", "ffn", "fcnet", "diag", "linear")


@dataclass
class LocationEncoderConfig(ConfigNode):
    """Position encoder + network (SPEC §2-§3).

    ``network``: ``auto`` (the encoder's own head for theorydiag/hexagridcell, else ``ffn``),
    ``ffn`` (Space2Vec FFN, §3.1), ``fcnet`` (geo_net, §2.11), ``diag`` (theorydiag's
    block-diagonal head, §2.5; ``use_postmat`` adds its D×D post-matrix) or ``linear``
    (hexagridcell's Linear → act → dropout head, §2.6).
    """

    position: PositionEncoderConfig = field(default_factory=PositionEncoderConfig)
    network: str = "auto"
    num_hidden_layer: int = 1
    hidden_dim: int = 512
    num_filts: int = 256
    dropout: float = 0.5
    # fcnet's ResLayer dropout: the reference fixes it at 0.5 and ignores ``dropout`` (SPEC §2.11)
    fcnet_dropout: float = 0.5
    activation: str = "relu"  # relu | leakyrelu (slope 0.2) | gelu (exact) | sigmoid | tanh
    use_layn: bool = True
    skip_connection: bool = True
    use_postmat: bool = True

    def resolved_network(self) -> str:
        """The network to build; ConfigError where the encoder and the network do not fit."""
        kind, net = self.position.type, self.network
        own = OWN_HEADS.get(kind)
        if net == "auto":
            return own or "ffn"
        if (own or net) != net or (own is None and net in OWN_HEADS.values()):
            want = own or "auto, ffn or fcnet"
            raise ConfigError(f"location_encoder.network={net!r} does not fit position.type="
                              f"{kind!r}; use {want} (SPEC §2.5/§2.6: theorydiag and "
                              "hexagridcell have their own head, no FFN)")
        return net


@dataclass
class PretrainConfig(ConfigNode):
    """Self-supervised pre-training (SPEC §5-§7.4).

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
    image_classifier_fullbatch_lr: float = 0.2
    fusion: str = "calibrated"


# Keys that no longer exist -> why; old saved configs still load, ``--set`` names the reason.
REMOVED_KEYS = {"finetune.eval_frequency": "it was never read: the experiment protocol's "
                                           "--eval-every sets the evaluation period"}


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
                              f"{pe.frequency_num} (SPEC §2.5)")
        for key in ("dropout", "fcnet_dropout"):
            if not 0.0 <= getattr(le, key) < 1.0:
                raise ConfigError(f"location_encoder.{key}={getattr(le, key)!r} must be in [0, 1)")
        pt = self.pretrain
        if pt.cross_replica_negatives and pt.loss not in ("contsoftmax", "contsoftmaxsym"):
            raise ConfigError("pretrain.cross_replica_negatives needs loss contsoftmax or "
                              f"contsoftmaxsym, not {pt.loss!r}")
        if not 0.0 < ft.label_ratio <= 1.0:
            raise ConfigError(f"finetune.label_ratio={ft.label_ratio} must be in (0, 1]")
        parse_float_list("finetune.image_classifier_l2_grid", ft.image_classifier_l2_grid)
        return self


# Checked by the last part of the key, in every section that has it.
_POSITIVE = {"frequency_num", "min_radius", "max_radius", "rbf_kernel_size", "num_rbf_anchor_pts",
             "legendre_polys", "tile_size", "embedding_size", "num_filts", "hidden_dim", "lr",
             "batch_size", "temp_inbatch", "temp_negloc", "temp_simcse", "num_neg_rand_loc",
             "image_classifier_steps", "image_classifier_fullbatch_lr", "steps_per_execution"}
_NON_NEGATIVE = {"epochs", "min_steps", "image_classifier_l2", "feature_dim", "num_classes",
                 "pretrain_in_memory_mb"}
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
            "fusion": ("calibrated", "product"), "jit_compile": ("auto", "on", "off"),
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


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in d.items():
        out.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping)
                   else {prefix + key: value})
    return out


def _mapping(d: Any, prefix: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping, got {d!r}")
    return d


# ----- (de)serialisation helpers --------------------------------------------------------------
def _to_plain(value: Any) -> Any:
    if isinstance(value, (ConfigNode, PositionEncoderConfig)):
        return value.to_dict()
    return copy.deepcopy(value)


def _node_type(f: dataclasses.Field) -> Optional[type]:
    """The config class of a nested section, None for a plain value."""
    factory = f.default_factory
    if factory is PositionEncoderConfig or (isinstance(factory, type) and issubclass(factory, ConfigNode)):
        return factory
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _child(node: Any, part: str, path: str, key: str) -> Any:
    """The nested section ``part`` of ``node`` for an override ``key``."""
    if isinstance(node, PositionEncoderConfig):
        if part == node.type:
            return node.options
        if part in ENCODER_OPTIONS:
            raise ConfigError(f"{key!r}: the selected encoder is {node.type!r}; set "
                              f"{path.rsplit('.', 1)[0]}.type={part} as well")
    elif dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
        child = getattr(node, part)
        if isinstance(child, (ConfigNode, PositionEncoderConfig)):
            return child
    raise ConfigError(f"unknown config key {key!r}")


def _assign(node: Any, name: str, value: Any, key: str) -> None:
    if isinstance(node, PositionEncoderConfig):
        if name != "type":
            node._option(name)
            _assign(node.options, name, value, key)
            return
        setattr(node, "type", value)
        return
    fields = {f.name: f for f in dataclasses.fields(node)}
    if name not in fields or _node_type(fields[name]):
        raise ConfigError(f"unknown config key {key!r}")
    setattr(node, name, _coerce(key, value, _default(fields[name])))


_BOOLS = {**dict.fromkeys(("true", "t", "1", "yes", "on"), True),
          **dict.fromkeys(("false", "f", "0", "no", "off"), False)}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML/CLI values arrive as strings or ints; coerce them to the field's default type."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            return _BOOLS[value.lower()] if isinstance(value, str) else bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):  # YAML reads a bare on/off as a boolean
            return ("on" if value else "off") if isinstance(value, bool) else str(value)
        if isinstance(default, list):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ValueError
            return [float(v) for v in value]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} should be a {type(default).__name__}"
                          + (f" of {len(default)} numbers" if isinstance(default, list) else "")) from None
    return value
