"""Base class of every position encoder: (..., 2) lon/lat in degrees -> (..., embedding_dim)."""

from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
import keras

# Reference name -> PositionEncoder subclass (after the TF Model Garden's registry).
ENCODERS: Dict[str, type] = {}


def register_encoder(name: str):
    """Registers a PositionEncoder subclass under its reference name and as Keras-serialisable."""

    def decorator(cls):
        if name in ENCODERS:
            raise KeyError(f"position encoder {name!r} is already registered")
        cls = keras.saving.register_keras_serializable(package="csp_tf")(cls)
        cls.registry_name = name
        ENCODERS[name] = cls
        return cls

    return decorator


def lookup_encoder(name: str) -> type:
    if name not in ENCODERS:
        raise ValueError(f"unknown position encoder {name!r}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


class PositionEncoder(keras.layers.Layer):
    """Fixed (mostly non-trainable) features of (lon, lat) in degrees.

    Input: float tensor of shape (..., 2), column 0 = longitude in [-180, 180], column 1 =
    latitude in [-90, 90], in degrees (docs/reference.md §1). Output: float32 (..., embedding_dim).
    Subclasses implement ``_encode(lonlat64)`` on float64 (the reference computes features in
    float64 numpy, then casts to float32) and ``embedding_dim``.
    Inputs are validated by the models and data layers, not here, so encoders stay XLA-friendly.
    """

    registry_name: str = ""
    config_keys: Tuple[str, ...] = ()  # constructor arguments saved by ``get_config``

    def __init__(self, **kwargs):
        # Pin float32 and no input autocast: under a mixed_float16 global policy Keras would
        # otherwise cast the degrees to float16 (0.06° steps at lon 123°) before `call`.
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    @property
    def embedding_dim(self) -> int:
        raise NotImplementedError  # abstract

    def _encode(self, lonlat: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError  # abstract

    def call(self, inputs):
        x = tf.cast(inputs, tf.float64)
        return tf.cast(self._encode(x), tf.float32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({k: getattr(self, k) for k in self.config_keys})
        return config


DEFAULT_MAP_RANGE = (-180.0, 180.0, -90.0, 90.0)
FREQ_INITS = ("geometric", "nerf", "random")


def map_range_normalize(lonlat: tf.Tensor, map_range=DEFAULT_MAP_RANGE) -> tf.Tensor:
    """The reference ``coord_normalize``: min-max to [-1, 1] (lon/180, lat/90 by default,
    docs/reference.md §1)."""
    lo = tf.constant([map_range[0], map_range[2]], lonlat.dtype)
    hi = tf.constant([map_range[1], map_range[3]], lonlat.dtype)
    return (lonlat - lo) / (hi - lo) * 2.0 - 1.0


def flatten_features(feats: tf.Tensor, lonlat: tf.Tensor, dim: int) -> tf.Tensor:
    """Reshapes per-point feature blocks (..., a, b, ...) to (..., dim), keeping lonlat's leading dims."""
    return tf.reshape(feats, tf.concat([tf.shape(lonlat)[:-1], [dim]], 0))


def geometric_frequencies(frequency_num: int, min_radius: float, max_radius: float,
                          freq_init: str = "geometric", seed: int = 0) -> np.ndarray:
    """The reference ``_cal_freq_list`` (docs/reference.md §2.1): float64 frequencies
    f_s, s = 0..S-1.

    geometric: λ_s = λ_min·(λ_max/λ_min)^{s/(S-1)}, f_s = 1/λ_s (no 2π);
    nerf: f_s = π·2^s; random: f_s = U[0,1)·λ_max, drawn from ``seed``.
    """
    if frequency_num < 1:
        raise ValueError(f"frequency_num={frequency_num} must be >= 1")
    if freq_init == "geometric":
        if frequency_num < 2:
            raise ValueError("frequency_num must be >= 2 for the geometric schedule (S-1 divides)")
        if not (0 < min_radius <= max_radius):
            raise ValueError(f"need 0 < min_radius={min_radius} <= max_radius={max_radius}")
        log_inc = math.log(float(max_radius) / float(min_radius)) / (frequency_num - 1.0)
        timescales = min_radius * np.exp(np.arange(frequency_num, dtype=np.float64) * log_inc)
        return 1.0 / timescales
    if freq_init == "nerf":
        return np.pi * (2.0 ** np.arange(frequency_num, dtype=np.float64))
    if freq_init == "random":
        return np.random.default_rng(seed).random(frequency_num) * max_radius
    raise ValueError(f"freq_init={freq_init!r} is not one of {', '.join(FREQ_INITS)}")
