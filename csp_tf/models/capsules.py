"""``capsules``: GeoCLIP's location network, one MLP per Fourier-feature scale, summed.

The input is ``num_capsules`` equal slices (the ``geoclip`` encoder's banks, σ by σ). Capsule i
maps slice i through ``num_hidden_layer`` × (Linear → act [→ Dropout]) of width ``hidden_dim``
and a final Linear to ``output_dim``; the embedding is the sum over capsules (no activation
after it). GeoCLIP: 3 capsules, 3 hidden layers of 1024, output 512, ReLU, no dropout.
Layers are PyTorch-default initialised, like ``nn.Linear``.
"""

from __future__ import annotations

from typing import List

import keras

from csp_tf.models.layers import (NetworkLayer, activation_fn, fold_seed, stateless_dropout,
                                  torch_linear)


@keras.saving.register_keras_serializable(package="csp_tf")
class CapsuleSum(NetworkLayer):
    """(..., num_capsules · slice) -> (..., output_dim): Σ_i MLP_i(slice_i)."""

    config_keys = ("input_dim", "output_dim", "num_capsules", "num_hidden_layer", "hidden_dim",
                   "dropout", "activation", "seed")

    def __init__(self, input_dim: int, output_dim: int, num_capsules: int = 3,
                 num_hidden_layer: int = 3, hidden_dim: int = 1024, dropout: float = 0.0,
                 activation: str = "relu", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.num_capsules, self.num_hidden_layer = int(num_capsules), int(num_hidden_layer)
        self.hidden_dim, self.dropout = int(hidden_dim), float(dropout)
        self.activation, self.seed = activation, int(seed)
        if self.num_capsules < 1 or self.input_dim % self.num_capsules:
            raise ValueError(f"capsules: input_dim {self.input_dim} is not {self.num_capsules} "
                             "equal slices (one per encoder scale)")
        self.slice_dim = self.input_dim // self.num_capsules
        self._act = activation_fn(activation)
        # Named attributes (not lists): tf.train.Checkpoint and .keras both see every weight.
        for i in range(self.num_capsules):
            fan_in = self.slice_dim
            for j in range(self.num_hidden_layer):
                setattr(self, f"capsule_{i}_hidden_{j}", torch_linear(
                    self.hidden_dim, fan_in, seed=self.seed + 100 * i + 10 * j,
                    name=f"capsule_{i}_hidden_{j}"))
                fan_in = self.hidden_dim
            setattr(self, f"capsule_{i}_head", torch_linear(
                self.output_dim, fan_in, seed=self.seed + 100 * i + 90, name=f"capsule_{i}_head"))

    def hidden(self, i: int) -> List[keras.layers.Dense]:
        return [getattr(self, f"capsule_{i}_hidden_{j}") for j in range(self.num_hidden_layer)]

    def head(self, i: int) -> keras.layers.Dense:
        return getattr(self, f"capsule_{i}_head")

    def build(self, input_shape):
        for i in range(self.num_capsules):
            fan_in = self.slice_dim
            for layer in self.hidden(i):
                layer.build((None, fan_in))
                fan_in = self.hidden_dim
            self.head(i).build((None, fan_in))
        self.built = True

    def call(self, x, training=False, seed=None):
        seed = seed if training else None
        out = None
        for i in range(self.num_capsules):
            h = x[..., i * self.slice_dim:(i + 1) * self.slice_dim]
            for j, layer in enumerate(self.hidden(i)):
                h = stateless_dropout(self._act(layer(h)), self.dropout,
                                      fold_seed(seed, i * self.num_hidden_layer + j))
            y = self.head(i)(h)
            out = y if out is None else out + y
        return out
