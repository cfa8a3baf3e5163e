"""Location encoder = position encoder + network (docs/reference.md §3.1, §2.11).

Networks:
* ``ffn``: the Space2Vec ``MultiLayerFeedForwardNN`` used by CSP: blocks of
  Linear → act → Dropout → (+x if in == out and skip) → (LayerNorm if use_layn), the final
  block keeping act + dropout ([QUIRK]: the embedding is post-activation, post-dropout).
* ``fcnet``: Mac Aodha et al.'s residual FCNet (``geo_net`` / Sup-only "wrap"), dropout 0.5 fixed.
* ``diag``: theorydiag's block-diagonal head (docs/reference.md §2.5), ``DiagHead``.
* ``capsules``: GeoCLIP's per-scale MLPs, summed (``csp_tf.models.capsules``; ``geoclip`` encoder).
* ``siren``: Rußwurm et al.'s / SatCLIP's SirenNet, sine layers then a linear layer
  (``csp_tf.models.siren``; docs/reference.md §13.5, after ``spherical_harmonics``).
* ``linear``: hexagridcell's head act(Dropout(Linear_{6S→D}(x))) (docs/reference.md §2.6): the FFN
  with ``num_hidden_layer=0`` (one Xavier-initialised block, no layer norm, no skip).
``location_encoder.network=auto`` picks the encoder's own head, else ``ffn``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import keras
import tensorflow as tf

from csp_tf.encoders import PositionEncoder, build_position_encoder
from csp_tf.models.layers import (LAYER_NORM_EPS, NetworkLayer, activation_fn, fold_seed,
                                  stateless_dropout, torch_linear)


@keras.saving.register_keras_serializable(package="csp_tf")
class FeedForwardNet(NetworkLayer):
    """The reference FFN. ``call(x, training, seed)``: dropout needs both training and a seed."""

    config_keys = ("input_dim", "output_dim", "num_hidden_layer", "hidden_dim", "dropout",
                   "activation", "use_layn", "skip_connection", "seed")

    def __init__(self, input_dim: int, output_dim: int, num_hidden_layer: int = 1,
                 hidden_dim: int = 512, dropout: float = 0.5, activation: str = "relu",
                 use_layn: bool = True, skip_connection: bool = True, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.num_hidden_layer, self.hidden_dim = int(num_hidden_layer), int(hidden_dim)
        self.dropout, self.activation = float(dropout), activation
        self.use_layn, self.skip_connection, self.seed = bool(use_layn), bool(skip_connection), int(seed)
        self._act = activation_fn(activation)
        # (in, out, layer_norm, skip) per block, as MultiLayerFeedForwardNN builds them.
        if self.num_hidden_layer <= 0:
            spec = [(self.input_dim, self.output_dim, False, False)]
        else:
            spec = [(self.input_dim, self.hidden_dim, self.use_layn, self.skip_connection)]
            spec += [(self.hidden_dim, self.hidden_dim, self.use_layn, self.skip_connection)] * (
                self.num_hidden_layer - 1)
            spec += [(self.hidden_dim, self.output_dim, False, False)]
        self._spec = spec
        # One attribute per sub-layer (not a list): tf.train.Checkpoint does not see layers
        # inside Keras-tracked lists, and the checkpoints must hold every weight.
        for i, (n_in, n_out, ln, _) in enumerate(spec):
            setattr(self, f"linear_{i}", torch_linear(n_out, n_in, xavier=True,
                                                      seed=self.seed + 10 * i, name=f"linear_{i}"))
            if ln:
                setattr(self, f"norm_{i}", keras.layers.LayerNormalization(
                    epsilon=LAYER_NORM_EPS, name=f"norm_{i}"))

    @property
    def linears(self) -> List[keras.layers.Dense]:
        return [getattr(self, f"linear_{i}") for i in range(len(self._spec))]

    @property
    def norms(self) -> List[Optional[keras.layers.LayerNormalization]]:
        return [getattr(self, f"norm_{i}", None) for i in range(len(self._spec))]

    def build(self, input_shape):
        for (n_in, n_out, ln, _), linear, norm in zip(self._spec, self.linears, self.norms):
            linear.build((None, n_in))
            if norm is not None:
                norm.build((None, n_out))
        self.built = True

    def call(self, x, training=False, seed=None):
        seed = seed if training else None
        for i, ((n_in, n_out, _, skip), linear, norm) in enumerate(
                zip(self._spec, self.linears, self.norms)):
            y = stateless_dropout(self._act(linear(x)), self.dropout, fold_seed(seed, i))
            if skip and n_in == n_out:
                y = y + x
            x = norm(y) if norm is not None else y
        return x


@keras.saving.register_keras_serializable(package="csp_tf")
class FCNet(NetworkLayer):
    """Mac Aodha et al. 2019 FCNet: Linear → ReLU → 4 × ResLayer. The reference fixes the
    ResLayer dropout at 0.5 whatever ``--dropout`` says (docs/reference.md §2.11); ``res_dropout``
    keeps that default (``location_encoder.fcnet_dropout``)."""

    config_keys = ("input_dim", "output_dim", "num_res_layers", "seed", "res_dropout")

    RES_DROPOUT = 0.5

    def __init__(self, input_dim: int, output_dim: int = 256, num_res_layers: int = 4,
                 seed: int = 0, res_dropout: float = RES_DROPOUT, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.num_res_layers, self.seed = int(num_res_layers), int(seed)
        self.res_dropout = float(res_dropout)
        d = self.output_dim
        self.inp = torch_linear(d, self.input_dim, seed=self.seed, name="input")
        # Named attributes, not a list of tuples: both tf.train.Checkpoint and the .keras
        # format must see these weights.
        for i in range(self.num_res_layers):
            setattr(self, f"res_{i}_a", torch_linear(d, d, seed=self.seed + 10 * i + 2, name=f"res_{i}_a"))
            setattr(self, f"res_{i}_b", torch_linear(d, d, seed=self.seed + 10 * i + 4, name=f"res_{i}_b"))

    @property
    def res(self) -> List[Tuple[keras.layers.Dense, keras.layers.Dense]]:
        return [(getattr(self, f"res_{i}_a"), getattr(self, f"res_{i}_b"))
                for i in range(self.num_res_layers)]

    def build(self, input_shape):
        self.inp.build((None, self.input_dim))
        for a, b in self.res:
            a.build((None, self.output_dim))
            b.build((None, self.output_dim))
        self.built = True

    def call(self, x, training=False, seed=None):
        seed = seed if training else None
        h = tf.nn.relu(self.inp(x))
        for i, (a, b) in enumerate(self.res):
            y = stateless_dropout(tf.nn.relu(a(h)), self.res_dropout, fold_seed(seed, i))
            h = h + tf.nn.relu(b(y))
        return h


@keras.saving.register_keras_serializable(package="csp_tf")
class DiagHead(NetworkLayer):
    """theorydiag's head (docs/reference.md §2.5): the (S·6) features as (S, 6), z_s = Σ_k
    x_{s,k}·P_{s,k,:} with a trainable P ∈ R^{S×6×(D/S)}, z flattened to D; then
    act(Dropout(W·Dropout(z) + b)) with ``use_postmat`` (W: a D×D PyTorch-default Linear), else
    act(Dropout(z)).

    P is Xavier-uniform the PyTorch way for a 3-D tensor: fan_in = 6·D/S, fan_out = D.
    """

    config_keys = ("input_dim", "output_dim", "dropout", "activation", "use_postmat", "seed")

    def __init__(self, input_dim: int, output_dim: int, dropout: float = 0.5,
                 activation: str = "relu", use_postmat: bool = True, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.dropout, self.activation = float(dropout), activation
        self.use_postmat, self.seed = bool(use_postmat), int(seed)
        self.num_scales = self.input_dim // 6
        if self.input_dim % 6 or self.output_dim % self.num_scales:
            raise ValueError(f"theorydiag head: input {self.input_dim} must be 6·S and num_filts "
                             f"{self.output_dim} a multiple of S={self.num_scales}")
        block = self.output_dim // self.num_scales
        bound = math.sqrt(6.0 / (6 * block + self.output_dim))
        init = keras.initializers.RandomUniform(-bound, bound, seed=self.seed)
        self.proj = self.add_weight(name="proj", shape=(self.num_scales, 6, block), initializer=init)
        self.postmat = (torch_linear(self.output_dim, self.output_dim, seed=self.seed + 1,
                                     name="postmat") if self.use_postmat else None)
        self._act = activation_fn(activation)

    def build(self, input_shape):
        if self.postmat is not None:
            self.postmat.build((None, self.output_dim))
        self.built = True

    def call(self, x, training=False, seed=None):
        seed = seed if training else None
        lead = tf.shape(x)[:-1]
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, self.num_scales, 6])
        z = tf.einsum("bsk,skd->bsd", x, tf.cast(self.proj, self.compute_dtype))
        z = tf.reshape(z, tf.concat([lead, [self.output_dim]], 0))
        if self.postmat is not None:
            z = self.postmat(stateless_dropout(z, self.dropout, fold_seed(seed, 0)))
        return self._act(stateless_dropout(z, self.dropout, fold_seed(seed, 1)))


@keras.saving.register_keras_serializable(package="csp_tf")
class LocationEncoder(keras.layers.Layer):
    """(B, 2) lon/lat degrees → (B, num_filts) location embedding e(x)."""

    def __init__(self, position_encoder: PositionEncoder, network: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.position_encoder = position_encoder
        self.network = network

    def build(self, input_shape):
        if not self.position_encoder.built:
            self.position_encoder.build(input_shape)
        self.network.build((None, self.position_encoder.embedding_dim))
        self.built = True

    @property
    def embedding_dim(self) -> int:
        return self.network.output_dim

    def call(self, lon_lat, training=False, seed=None):
        return self.network(self.position_encoder(lon_lat), training=training, seed=seed)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.embedding_dim,)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(position_encoder=keras.saving.serialize_keras_object(self.position_encoder),
                      network=keras.saving.serialize_keras_object(self.network))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["position_encoder"] = keras.saving.deserialize_keras_object(config["position_encoder"])
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


def with_drawn_options(le: Dict[str, Any], position_encoder: PositionEncoder) -> Dict[str, Any]:
    """``le`` (a location-encoder config as a dict) with the position options it leaves None (to
    a seed or a schedule) set to what ``position_encoder`` drew from them: how a model saves its
    config, so a reload never redraws them, and how two configs of one encoder compare equal."""
    drawn = position_encoder.get_config()
    options = le["position"][le["position"]["type"]]
    options.update({k: drawn[k] for k, v in options.items() if v is None and k in drawn})
    return le


def build_location_encoder(cfg, seed: int = 0, name: str = "location_encoder") -> LocationEncoder:
    """From a ``LocationEncoderConfig``; ``cfg.resolved_network()`` picks the network."""
    pe = build_position_encoder(cfg.position)
    d_in, net = pe.embedding_dim, cfg.resolved_network()
    if net == "fcnet":
        network = FCNet(d_in, cfg.num_filts, seed=seed, res_dropout=cfg.fcnet_dropout,
                        name="fcnet")
    elif net == "diag":
        network = DiagHead(d_in, cfg.num_filts, cfg.dropout, cfg.activation, cfg.use_postmat,
                           seed=seed, name="diag")
    elif net == "capsules":
        from csp_tf.models.capsules import CapsuleSum

        network = CapsuleSum(d_in, cfg.num_filts, len(cfg.position.sigmas), cfg.num_hidden_layer,
                             cfg.hidden_dim, cfg.dropout, cfg.activation, seed=seed, name="capsules")
    elif net == "siren":
        from csp_tf.models.siren import SirenNet

        network = SirenNet(d_in, cfg.num_filts, cfg.num_hidden_layer, cfg.hidden_dim, cfg.dropout,
                           seed=seed, name="siren")
    else:
        network = FeedForwardNet(d_in, cfg.num_filts, 0 if net == "linear" else cfg.num_hidden_layer,
                                 cfg.hidden_dim, cfg.dropout, cfg.activation, cfg.use_layn,
                                 cfg.skip_connection, seed=seed, name=net)
    return LocationEncoder(pe, network, name=name)
