"""The position encoder's part of the config: one options dataclass per kind of encoder and
``PositionEncoderConfig``, the OneOf over them (the TF Model Garden pattern).

``location_encoder.position.type`` picks the encoder and ``location_encoder.position.<type>``
holds that encoder's options; ``location_encoder.position.<option>`` is short for the selected
encoder's option. Changing the type keeps the options the two encoders share (the radii carry
from gridcell to theory). ``OWN_HEADS`` / ``NETWORKS`` name the heads that may follow an
encoder. The stage configs that hold this live in ``csp_tf.configs``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from csp_tf.config_tree import ConfigError, ConfigNode, OneOfNode, _assign, _mapping


# ----- position encoder options: one dataclass per kind of encoder --------------------------
MAP_RANGE = [-180.0, 180.0, -90.0, 90.0]


@dataclass
class ScheduleOptions(ConfigNode):
    """Encoders on the ``_cal_freq_list`` schedule (docs/reference.md §2.1): S, λ_min, λ_max
    (degrees for the Space2Vec encoders, radian multiples for Sphere2Vec). ``seed`` draws the
    ``random`` schedule; ``frequencies`` gives the f_s outright (a saved model's)."""

    frequency_num: int = 32
    min_radius: float = 1e-6
    max_radius: float = 1.0
    freq_init: str = "geometric"  # geometric | nerf | random
    seed: int = 0
    frequencies: Optional[List[float]] = None


@dataclass
class GridHashOptions(ScheduleOptions):
    """``gridcell_hash`` (docs/reference.md §13.4.1): ``gridcell``'s schedule, plus
    ``grid_levels`` trainable tables of ``grid_features`` values per corner, cell sizes geometric
    from ``grid_coarsest`` to ``grid_finest`` degrees; a level with more corners than
    2^``grid_log2_table_size`` is hashed into that many rows. Tables start
    U(±``grid_init``) from ``seed``."""

    grid_levels: int = 8
    grid_coarsest: float = 2.0
    grid_finest: float = 0.05
    grid_features: int = 4
    grid_log2_table_size: int = 18
    grid_init: float = 0.0001


@dataclass
class HexaGridOptions(ConfigNode):
    """``hexagridcell`` (docs/reference.md §2.6): f_s = λ_max^{-s/(S-1)}, no λ_min."""

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
    """``rbf`` (docs/reference.md §2.8): M Gaussian kernels of width σ (degrees) around anchors.
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
    """``rff`` (docs/reference.md §2.9): ω ~ N(0, k·I) (``variance``, the [QUIRK]) or N(0, k⁻²·I)
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
    """``spherical_harmonics`` (docs/reference.md §13.5): L² features."""

    legendre_polys: int = 10
    harmonics_calculation: str = "analytic"  # analytic (SatCLIP) | closed-form


@dataclass
class TileOptions(ConfigNode):
    """``tile`` (docs/reference.md §13.4): cell size (degrees) and the table's width."""

    tile_size: float = 1.0
    embedding_size: int = 64
    seed: int = 0


@dataclass
class GeoCLIPOptions(ConfigNode):
    """``geoclip`` (csp_tf.encoders.geoclip): Equal Earth, then F Gaussian Fourier features per
    scale σ (three scales, as the config keeps a list's length); B ~ N(0, σ²) from ``seed``
    unless loaded (GeoCLIP's own: csp_tf.pretrained_geoclip)."""

    sigmas: List[float] = field(default_factory=lambda: [1.0, 16.0, 256.0])
    encoded_size: int = 256
    seed: int = 0


_SCHEDULED = ("gridcell", "gridcellnorm", "theory", "theorynorm", "theorydiag", "sphereC",
              "sphereC+", "sphereM", "sphereM+", "dfs")
# Every registered encoder (csp_tf.encoders.ENCODERS; a test keeps the two equal) -> options.
ENCODER_OPTIONS: Dict[str, type] = {
    **{name: ScheduleOptions for name in _SCHEDULED},
    **{name: MapRangeOptions for name in ("naive", "wrap", "geo_net_fft", "geo_net_3d")},
    "hexagridcell": HexaGridOptions, "nerf": NerfOptions, "rbf": RBFOptions, "rff": RFFOptions,
    "spherical_harmonics": HarmonicsOptions, "tile": TileOptions,
    "geoclip": GeoCLIPOptions, "gridcell_hash": GridHashOptions,
}
# Old saved configs have one flat section: each encoder takes the options it has, as before.
_LEGACY_FLAT = {f.name for c in ENCODER_OPTIONS.values() for f in dataclasses.fields(c)}


class PositionEncoderConfig(OneOfNode):
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

    # ----- how a dotted override (``ExperimentConfig.override``) reaches the options ------------
    def _override_child(self, part: str, path: str, key: str) -> Optional[ConfigNode]:
        if part == self.type:
            return self.options
        if part in ENCODER_OPTIONS:
            raise ConfigError(f"{key!r}: the selected encoder is {self.type!r}; set "
                              f"{path.rsplit('.', 1)[0]}.type={part} as well")
        return None

    def _override_assign(self, name: str, value: Any, key: str) -> None:
        if name != "type":
            self._option(name)
            _assign(self.options, name, value, key)
            return
        setattr(self, "type", value)


def _check_type(kind: str) -> None:
    if kind not in ENCODER_OPTIONS:
        raise ConfigError(f"location_encoder.position.type={kind!r} is not a known encoder; "
                          f"known: {', '.join(sorted(ENCODER_OPTIONS))}")


# ----- the heads after the encoder (location_encoder.network) -------------------------------
# Encoders with their own trainable head instead of the FFN (docs/reference.md §2.5, §2.6) ->
# network name.
OWN_HEADS = {"theorydiag": "diag", "hexagridcell": "linear", "geoclip": "capsules"}
NETWORKS = ("auto", "ffn", "fcnet", "diag", "linear", "capsules", "siren")
