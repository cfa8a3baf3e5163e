"""Building blocks with the reference's numerics (SPEC §3.1): PyTorch-style initialisers,
exact activations, LayerNorm ε = 1e-5, and a stateless (seeded) dropout.

Dropout is stateless on purpose: each forward pass gets an explicit seed, so the three
independent passes of the contrastive loss are explicit, a resumed run draws exactly the
masks an uninterrupted run would, and the step compiles under XLA.
"""

from __future__ import annotations

import math
from typing import Optional

import keras
import tensorflow as tf

from csp_tf.random_ops import fold_in, uniform

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm default (Keras: 1e-3)
LEAKY_RELU_SLOPE = 0.2  # reference get_activation_function (Keras: 0.3)


def activation_fn(name: str):
    """The reference activations: leakyrelu (slope 0.2), exact erf GELU, relu, sigmoid, tanh."""
    if name == "leakyrelu":
        return lambda x: tf.nn.leaky_relu(x, alpha=LEAKY_RELU_SLOPE)
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "relu":
        return tf.nn.relu
    if name == "sigmoid":
        return tf.sigmoid
    if name == "tanh":
        return tf.tanh
    raise ValueError(f"activation={name!r} is not one of leakyrelu, gelu, relu, sigmoid, tanh")


def torch_default_uniform(fan_in: int, seed: Optional[int]) -> keras.initializers.Initializer:
    """PyTorch nn.Linear default for weight and bias: U(±1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound, seed=seed)


def torch_linear(units: int, fan_in: int, *, use_bias: bool = True, xavier: bool = False,
                 seed: Optional[int] = None, name: Optional[str] = None) -> keras.layers.Dense:
    """A Dense initialised like the reference: Xavier-uniform (FFN) or PyTorch default."""
    kernel = (keras.initializers.GlorotUniform(seed=seed) if xavier
              else torch_default_uniform(fan_in, seed))
    bias = torch_default_uniform(fan_in, None if seed is None else seed + 1)
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=kernel,
                              bias_initializer=bias, name=name)


def stateless_dropout(x: tf.Tensor, rate: float, seed: Optional[tf.Tensor]) -> tf.Tensor:
    """Inverted dropout with a [2]-int seed; identity when ``seed`` is None or rate == 0."""
    if seed is None or rate <= 0.0:
        return x
    keep = uniform(tf.shape(x), seed) >= rate  # same draws with and without XLA
    return tf.where(keep, x / tf.cast(1.0 - rate, x.dtype), tf.zeros_like(x))


def fold_seed(seed: Optional[tf.Tensor], salt: int) -> Optional[tf.Tensor]:
    """Derives an independent [2] seed from ``seed`` (None passes through)."""
    if seed is None:
        return None
    return fold_in(seed, salt)
