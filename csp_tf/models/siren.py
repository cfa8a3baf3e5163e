"""``siren``: the sinusoidal representation network (SIREN, Sitzmann et al. 2020) as Rußwurm et
al. 2024 and SatCLIP put it after spherical harmonics (docs/reference.md §13.5).

``num_hidden_layer`` sine layers of width ``hidden_dim``, h ← sin(ω·Drop(W h + b)), then a
linear layer to ``output_dim`` (no activation, no dropout). ω = ``w0_initial`` (30) for the
first layer and ``w0`` (1) after it. Initialisation, weights and biases alike:
U(±1/fan_in) for the first layer, U(±√(6/fan_in)/w0) for every later one, the last included.
Dropout comes before the sine, as in the reference's ``Siren`` layer, and only in training
with a seed (the seeded dropout of ``csp_tf.models.layers``).
"""

from __future__ import annotations

import math
from typing import List, Optional

import keras
import tensorflow as tf

from csp_tf.models.layers import NetworkLayer, fold_seed, stateless_dropout

W0_INITIAL = 30.0  # SirenNet's w0_initial
W0 = 1.0  # SirenNet's w0 in Rußwurm et al. and SatCLIP (lucidrains' default is 30)


def siren_bound(fan_in: int, w0: float, first: bool) -> float:
    """The half-width of the SIREN uniform initialisation of one layer."""
    return 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / w0


def siren_dense(units: int, fan_in: int, w0: float, first: bool, seed: int, name: str,
                dtype: Optional[str] = None) -> keras.layers.Dense:
    bound = siren_bound(fan_in, w0, first)
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.RandomUniform(-bound, bound, seed=seed),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound, seed=seed + 1),
        name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="csp_tf")
class SirenNet(NetworkLayer):
    """(..., input_dim) -> (..., output_dim). ``call(x, training, seed)`` like the FFN."""

    config_keys = ("input_dim", "output_dim", "num_hidden_layer", "hidden_dim", "dropout",
                   "w0_initial", "w0", "seed")

    def __init__(self, input_dim: int, output_dim: int, num_hidden_layer: int = 2,
                 hidden_dim: int = 256, dropout: float = 0.0, w0_initial: float = W0_INITIAL,
                 w0: float = W0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.num_hidden_layer, self.hidden_dim = int(num_hidden_layer), int(hidden_dim)
        self.dropout, self.w0_initial, self.w0 = float(dropout), float(w0_initial), float(w0)
        self.seed = int(seed)
        if self.num_hidden_layer < 1:
            raise ValueError(f"siren: num_hidden_layer={self.num_hidden_layer} must be >= 1 "
                             "(the first sine layer takes the position features)")
        # Named attributes (not a list): tf.train.Checkpoint and .keras both see every weight.
        fan_in = self.input_dim
        for j in range(self.num_hidden_layer):
            # The first layer stays float32 under a mixed policy: ω = 30 multiplies the
            # pre-activation's rounding error too.
            setattr(self, f"hidden_{j}", siren_dense(
                self.hidden_dim, fan_in, self.layer_w0(j), j == 0, self.seed + 10 * j,
                f"hidden_{j}", dtype="float32" if j == 0 else None))
            fan_in = self.hidden_dim
        self.head = siren_dense(self.output_dim, fan_in, self.w0, False,
                                self.seed + 10 * self.num_hidden_layer, "head")

    def layer_w0(self, j: int) -> float:
        return self.w0_initial if j == 0 else self.w0

    @property
    def hidden(self) -> List[keras.layers.Dense]:
        return [getattr(self, f"hidden_{j}") for j in range(self.num_hidden_layer)]

    def build(self, input_shape):
        fan_in = self.input_dim
        for layer in self.hidden:
            layer.build((None, fan_in))
            fan_in = self.hidden_dim
        self.head.build((None, fan_in))
        self.built = True

    def call(self, x, training=False, seed=None):
        seed = seed if training else None
        h = x
        for j, layer in enumerate(self.hidden):
            z = stateless_dropout(layer(h), self.dropout, fold_seed(seed, j))
            h = tf.sin(tf.cast(self.layer_w0(j), z.dtype) * z)
        return self.head(h)
