"""The CSP model: location encoder + heads, used by both stages and exported for serving.

* ``class_head``: Linear(D → C) → P(y|loc): per-class sigmoid, no bias (``location_head=
  "sigmoid"``, docs/reference.md §3.2, the reference) or softmax with a bias that carries the class
  prior (``"softmax"``, the natural-data default).
* ``img_dec``: Linear(F → D, bias) on raw image features, for the contrastive losses (§3.3, §4).
* ``loc_dec``: Linear(D → F, bias), for the l2regress (MSE) baseline (§3.3).
* ``image_classifier``: Linear(F → C) softmax P(y|img). The reference loads stored image
  predictions; csp-tf trains this linear probe on the frozen features so the exported model
  answers P(y|img, loc) ∝ P(y|img)·P(y|loc) on its own (docs/reference.md §9).
* feature standardisation: ``(f − mean) / std`` with the ingest's statistics, held as weights so
  every consumer of image features (probe, img_dec, loc_dec target, the SavedModel) sees the
  same inputs (``standardize_features``).
* fusion: ``product`` (docs/reference.md §9) or ``calibrated``: softmax(α·log P(y|img) + β·log
  P(y|loc) − γ·log P(y)), (α, β, γ) and log P(y) held as weights set by ``csp_tf.calibration``.
* ``place_memory`` (``place_memory_size > 0``, softmax head only): the labeled places and their
  labels; outside training P(y|loc) mixes the network's softmax with the nearest places' votes
  (``csp_tf.models.place_memory``; set and tuned by ``csp_tf.memory_calibration``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import keras
import tensorflow as tf

from csp_tf.configs import ExperimentConfig, LocationEncoderConfig
from csp_tf.losses import CONTRASTIVE_LOSSES
from csp_tf.models.layers import torch_linear
from csp_tf.models.location_encoder import build_location_encoder, with_drawn_options
from csp_tf.models.place_memory import PlaceMemory


def missing_location_mask(lon_lat: tf.Tensor) -> tf.Tensor:
    """(B,) True where lon or lat is NaN: such rows fall back to the image classifier
    (docs/reference.md §9)."""
    return tf.reduce_any(tf.math.is_nan(lon_lat), axis=-1)


def fuse(image_probs: tf.Tensor, location_probs: tf.Tensor, lon_lat: tf.Tensor) -> tf.Tensor:
    """P(y|img) ⊙ σ(W_c e(x)), elementwise and unnormalised; image-only where location is NaN."""
    missing = missing_location_mask(lon_lat)[:, None]
    return image_probs * tf.where(missing, tf.ones_like(location_probs), location_probs)


_LOG_FLOOR = 1e-12  # keeps log P finite where a probability underflows to 0


def fuse_calibrated(image_probs: tf.Tensor, location_probs: tf.Tensor, lon_lat: tf.Tensor,
                    weights: tf.Tensor, log_prior: tf.Tensor) -> tf.Tensor:
    """softmax(α·log P_img + β·log P_loc − γ·log P(y)); P_img alone where location is NaN.

    With a softmax location head and α = β = γ = 1 this is Bayes' rule for two conditionally
    independent views, P(y|i,x) ∝ P(y|i)P(y|x)/P(y); α, β act as inverse temperatures.
    """
    log_img = tf.math.log(tf.maximum(image_probs, _LOG_FLOOR))
    log_loc = tf.math.log(tf.maximum(location_probs, _LOG_FLOOR))
    w = tf.cast(weights, tf.float32)
    score = w[0] * log_img + w[1] * log_loc - w[2] * log_prior[None, :]
    fused = tf.nn.softmax(score, axis=-1)
    missing = missing_location_mask(lon_lat)[:, None]
    return tf.where(missing, image_probs, fused)


@keras.saving.register_keras_serializable(package="csp_tf")
class CSPModel(keras.Model):
    """Location encoder, class head, image projection/decoder and image classifier.

    ``call({"lon_lat": (B,2), "image_features": (B,F)})`` returns fused class scores, so the
    ``.keras`` file is directly reusable; the stages call the named methods.
    """

    def __init__(self, location_encoder: LocationEncoderConfig | Dict[str, Any], num_classes: int,
                 feature_dim: int, pretrain_loss: str = "contsoftmax", seed: int = 0,
                 location_head: str = "sigmoid",
                 standardize_features: bool = False, fusion: str = "product",
                 place_memory_size: int = 0, **kwargs):
        super().__init__(**kwargs)
        if location_head not in ("sigmoid", "softmax"):
            raise ValueError(f"location_head={location_head!r} is not 'sigmoid' or 'softmax'")
        if place_memory_size and location_head != "softmax":
            raise ValueError("a place memory mixes votes into a softmax P(y|loc); "
                             f"location_head={location_head!r} has per-class sigmoids")
        if fusion not in ("product", "calibrated"):
            raise ValueError(f"fusion={fusion!r} is not 'product' or 'calibrated'")
        self.location_head, self.fusion = location_head, fusion
        self.standardize_features = bool(standardize_features)
        # A dict when reloaded from a saved config (``get_config`` writes ``to_dict``).
        self.location_encoder_config = (
            location_encoder if isinstance(location_encoder, LocationEncoderConfig)
            else LocationEncoderConfig.from_dict(location_encoder, "location_encoder."))
        self.num_classes, self.feature_dim = int(num_classes), int(feature_dim)
        self.pretrain_loss, self.seed = pretrain_loss, int(seed)
        self.location_encoder = build_location_encoder(self.location_encoder_config, seed=self.seed)
        d = self.location_encoder.embedding_dim
        self.embedding_dim = d
        # The class logits stay float32 under mixed precision: over C classes a bf16 logit (8-bit
        # mantissa) cost 2-3 points of top-1 on the demo world (docs/benchmarks.md).
        self.class_head = torch_linear(self.num_classes, d, use_bias=location_head == "softmax",
                                       seed=self.seed + 1000, name="class_head", dtype="float32")
        self.img_dec = (torch_linear(d, self.feature_dim, seed=self.seed + 2000, name="img_dec")
                        if pretrain_loss in CONTRASTIVE_LOSSES else None)
        self.loc_dec = (torch_linear(self.feature_dim, d, seed=self.seed + 3000, name="loc_dec")
                        if pretrain_loss == "l2regress" else None)
        self.image_classifier = torch_linear(self.num_classes, self.feature_dim,
                                             seed=self.seed + 4000, name="image_classifier")
        # Statistics and fusion parameters are set from data, never trained by gradients.
        f, c = self.feature_dim, self.num_classes
        self.feature_mean = self.add_weight(shape=(f,), initializer="zeros", trainable=False,
                                            name="feature_mean")
        self.feature_std = self.add_weight(shape=(f,), initializer="ones", trainable=False,
                                           name="feature_std")
        self.fusion_weights = self.add_weight(shape=(3,), trainable=False, name="fusion_weights",
                                              initializer=keras.initializers.Constant([1.0, 1.0, 0.0]))
        self.log_prior = self.add_weight(shape=(c,), trainable=False, name="log_prior",
                                         initializer=keras.initializers.Constant(-math.log(c)))
        self.place_memory_size = int(place_memory_size)
        self.place_memory = (PlaceMemory(self.place_memory_size, c, name="place_memory")
                             if self.place_memory_size else None)
        self._build_all()

    def _build_all(self) -> None:
        self.location_encoder.build((None, 2))
        d = self.embedding_dim
        self.class_head.build((None, d))
        if self.img_dec is not None:
            self.img_dec.build((None, self.feature_dim))
        if self.loc_dec is not None:
            self.loc_dec.build((None, d))
        self.image_classifier.build((None, self.feature_dim))
        self.built = True

    def build(self, input_shape=None):  # everything is built in __init__
        self.built = True

    # ----- pieces used by the training steps and the exported signatures ----------------------
    def location_embedding(self, lon_lat, training: bool = False, seed=None):
        return self.location_encoder(tf.cast(lon_lat, tf.float32), training=training, seed=seed)

    def location_logits(self, lon_lat, training: bool = False, seed=None):
        return self.class_head(self.location_embedding(lon_lat, training, seed))

    def location_probs(self, lon_lat, training: bool = False, seed=None, memory: bool = True):
        """P(y|loc). Outside training (and unless ``memory=False``) a calibrated place memory
        mixes in the nearest labeled places' votes; training always sees the network alone."""
        logits = tf.cast(self.location_logits(lon_lat, training, seed), tf.float32)
        if self.location_head != "softmax":
            return tf.sigmoid(logits)
        probs = tf.nn.softmax(logits, axis=-1)
        if self.place_memory is not None and memory and not training:
            probs = self.place_memory.mix(probs, lon_lat)
        return probs

    def prepare_features(self, image_features):
        """Raw features → what every image-side layer consumes (standardised if configured)."""
        f = tf.cast(image_features, tf.float32)
        if self.standardize_features:
            f = (f - self.feature_mean) / self.feature_std
        return f

    def set_feature_stats(self, mean, std) -> None:
        """Stores the ingest's per-dimension mean/std (std floored at 1e-6)."""
        import numpy as np
        mean = np.asarray(mean, np.float32).reshape(-1)
        std = np.maximum(np.asarray(std, np.float32).reshape(-1), 1e-6)
        if mean.shape != (self.feature_dim,) or std.shape != (self.feature_dim,):
            raise ValueError(f"feature statistics have width {mean.shape[0]}/{std.shape[0]}, "
                             f"the model's feature_dim is {self.feature_dim}")
        self.feature_mean.assign(mean)
        self.feature_std.assign(std)

    def image_logits(self, image_features):
        return self.image_classifier(self.prepare_features(image_features))

    def image_probs(self, image_features):
        return tf.nn.softmax(tf.cast(self.image_logits(image_features), tf.float32), axis=-1)

    def image_embedding(self, image_features):
        return self.img_dec(self.prepare_features(image_features))

    def predict_all(self, lon_lat, image_features) -> Dict[str, tf.Tensor]:
        """Evaluation-mode outputs: fused, image-only and location-only class scores."""
        lon_lat = tf.cast(lon_lat, tf.float32)
        safe = tf.where(tf.math.is_nan(lon_lat), tf.zeros_like(lon_lat), lon_lat)
        loc = self.location_probs(safe)
        img = self.image_probs(image_features)
        if self.fusion == "calibrated":
            fused = fuse_calibrated(img, loc, lon_lat, self.fusion_weights, self.log_prior)
        else:
            fused = fuse(img, loc, lon_lat)
        return {"probabilities": fused, "image_probabilities": img,
                "location_probabilities": loc}

    def call(self, inputs, training=False):
        return self.predict_all(inputs["lon_lat"], inputs["image_features"])["probabilities"]

    def get_config(self) -> Dict[str, Any]:
        # Random parts drawn from a seed are saved as drawn, so a reload never redraws them.
        le = with_drawn_options(self.location_encoder_config.to_dict(),
                                self.location_encoder.position_encoder)
        return {"location_encoder": le, "num_classes": self.num_classes,
                "feature_dim": self.feature_dim, "pretrain_loss": self.pretrain_loss,
                "seed": self.seed, "location_head": self.location_head,
                "standardize_features": self.standardize_features, "fusion": self.fusion,
                "place_memory_size": self.place_memory_size, "name": self.name}


def build_csp_model(config: ExperimentConfig, num_classes: Optional[int] = None,
                    feature_dim: Optional[int] = None, place_memory_size: int = 0) -> CSPModel:
    """From an ``ExperimentConfig`` (data shapes may be passed when the config leaves them 0;
    ``place_memory_size``: how many labeled places the model will hold, 0 for none)."""
    return CSPModel(config.location_encoder,
                    num_classes=num_classes or config.data.num_classes,
                    feature_dim=feature_dim or config.data.feature_dim,
                    pretrain_loss=config.pretrain.loss, seed=config.runtime.seed,
                    location_head="softmax" if config.finetune.location_loss == "softmax" else "sigmoid",
                    standardize_features=config.data.standardize_features,
                    fusion=config.finetune.fusion, place_memory_size=place_memory_size,
                    name="csp")
