"""Building blocks with the reference's numerics (docs/reference.md §3.1): PyTorch-style
initialisers, exact activations, LayerNorm ε = 1e-5, and a stateless (seeded) dropout.

Dropout is stateless on purpose: each forward pass gets an explicit seed, so the three
independent passes of the contrastive loss are explicit, a resumed run draws exactly the
masks an uninterrupted run would, and the step compiles under XLA.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from csp_tf.random_ops import fold_in, uniform


LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm default (Keras: 1e-3)
LEAKY_RELU_SLOPE = 0.2  # reference get_activation_function (Keras: 0.3)


# The reference activations: leakyrelu (slope 0.2), exact erf GELU, relu, sigmoid, tanh.
ACTIVATIONS = {"relu": tf.nn.relu, "leakyrelu": lambda x: tf.nn.leaky_relu(x, alpha=LEAKY_RELU_SLOPE),
               "gelu": lambda x: tf.nn.gelu(x, approximate=False), "sigmoid": tf.sigmoid,
               "tanh": tf.tanh}


class NetworkLayer(keras.layers.Layer):
    """(..., input_dim) -> (..., output_dim); ``config_keys`` are the saved constructor args."""

    config_keys: Tuple[str, ...] = ()

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({k: getattr(self, k) for k in self.config_keys})
        return config


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def torch_default_uniform(fan_in: int, seed: Optional[int]) -> keras.initializers.Initializer:
    """PyTorch nn.Linear default for weight and bias: U(±1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def torch_linear(units: int, fan_in: int, *, use_bias: bool = True, xavier: bool = False,
                 seed: Optional[int] = None, name: Optional[str] = None,
                 dtype: Optional[str] = None) -> keras.layers.Dense:
    """A Dense initialised like the reference: Xavier-uniform (FFN) or PyTorch default.
    ``dtype`` overrides the global policy (``"float32"`` keeps a head exact under bf16)."""
    kernel = (keras.initializers.GlorotUniform(seed=seed) if xavier
              else torch_default_uniform(fan_in, seed))
    bias = torch_default_uniform(fan_in, None if seed is None else seed + 1)
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=kernel,
                              bias_initializer=bias, name=name, dtype=dtype)


class SegmentSeeds:
    """Per-row-segment dropout seeds for one forward pass over concatenated inputs.

    ``SegmentSeeds([s_a, s_b], [n_a, n_b])`` on rows ``[x_a; x_b]`` draws, for every dropout
    layer, exactly the mask that a separate pass on ``x_a`` with seed ``s_a`` and one on ``x_b``
    with seed ``s_b`` would draw: the mask of segment j is ``uniform([n_j, ...], fold(s_j, …))``,
    the same counter-based draws, concatenated along rows. ``rows`` may be ints or scalar tensors.
    """

    def __init__(self, seeds: Sequence[tf.Tensor], rows: Sequence):
        if len(seeds) != len(rows):
            raise ValueError(f"{len(seeds)} seeds for {len(rows)} row segments")
        self.seeds, self.rows = list(seeds), list(rows)

    def fold(self, salt: int) -> "SegmentSeeds":
        return SegmentSeeds([fold_in(s, salt) for s in self.seeds], self.rows)

    def uniform(self, shape) -> tf.Tensor:
        """The concatenated per-segment draws for a tensor of ``shape`` ([rank] ints, rows first)."""
        tail = tf.cast(shape, tf.int64)[1:]
        parts = [uniform(tf.concat([[tf.cast(r, tf.int64)], tail], 0), s)
                 for s, r in zip(self.seeds, self.rows)]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)


def stateless_dropout(x: tf.Tensor, rate: float, seed) -> tf.Tensor:
    """Inverted dropout with a [2]-int seed (or ``SegmentSeeds``); identity when ``seed`` is
    None or rate == 0."""
    if seed is None or rate <= 0.0:
        return x
    u = seed.uniform(tf.shape(x)) if isinstance(seed, SegmentSeeds) else uniform(tf.shape(x), seed)
    keep = u >= rate  # same draws with and without XLA
    return tf.where(keep, x / tf.cast(1.0 - rate, x.dtype), tf.zeros_like(x))


def fold_seed(seed, salt: int):
    """Derives an independent [2] seed from ``seed`` (None passes through; ``SegmentSeeds``
    folds every segment's seed)."""
    if seed is None:
        return None
    if isinstance(seed, SegmentSeeds):
        return seed.fold(salt)
    return fold_in(seed, salt)
