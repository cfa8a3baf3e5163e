"""Pre-trained location encoders shipped with csp-tf, and how to make one.

A shipped encoder is a directory with:

    location_encoder.keras   a Keras model: (B, 2) lon/lat degrees -> (B, D) embedding
    saved_model/             the same as a SavedModel, signature ``location_embedding``
    config.yaml              the ExperimentConfig it was trained with
    SOURCES.md               data sources and licences
    card.json                what it is, and how it was made without a path: the command,
                             the config hash and the training data's fingerprint
                             (csp_tf/provenance.py)
    MODEL_CARD.md            for people: data and licences, intended use, metrics, limits

Load one in a line::

    enc = csp_tf.pretrained.load_location_encoder("places")   # keras.Model
    emb = enc(np.array([[-122.4, 37.8]], "float32"))            # (1, 256)

or, without csp-tf, ``tf.saved_model.load(path).signatures["location_embedding"]``.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, Optional

import keras
import numpy as np
import tensorflow as tf

PACKAGE_DIR = os.path.join(os.path.dirname(__file__), "pretrained_models")
KERAS_FILE, SAVED_MODEL_DIR = "location_encoder.keras", "saved_model"


def available() -> Dict[str, str]:
    """{name: directory} of the encoders shipped inside the package."""
    if not os.path.isdir(PACKAGE_DIR):
        return {}
    return {n: os.path.join(PACKAGE_DIR, n) for n in sorted(os.listdir(PACKAGE_DIR))
            if os.path.exists(os.path.join(PACKAGE_DIR, n, KERAS_FILE))}


def load_location_encoder(name_or_path: str = "places") -> keras.Model:
    """A shipped encoder by name (``available()``) or an exported directory; eval mode."""
    from csp_tf.models.loading import load_csp_model

    path = available().get(name_or_path, name_or_path)
    file = os.path.join(path, KERAS_FILE)
    if not os.path.exists(file):
        raise FileNotFoundError(f"no pre-trained location encoder {name_or_path!r}: {file} does "
                                f"not exist; shipped: {', '.join(available()) or 'none'}")
    return load_csp_model(file)


@keras.saving.register_keras_serializable(package="csp_tf")
class StandaloneLocationEncoder(keras.Model):
    """lon/lat degrees (B, 2) -> embedding (B, D): a CSPModel's location encoder on its own."""

    def __init__(self, location_encoder, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        from csp_tf.configs import LocationEncoderConfig
        from csp_tf.models.location_encoder import build_location_encoder

        le_cfg = (location_encoder if isinstance(location_encoder, LocationEncoderConfig)
                  else LocationEncoderConfig.from_dict(location_encoder, "location_encoder."))
        # Kept as a config object, not a dict: Keras would wrap a dict attribute in a tracked
        # container tied to this model, and copying that copies (reloads) the whole model.
        self._location_encoder_cfg = LocationEncoderConfig.from_dict(le_cfg.to_dict(), "location_encoder.")
        self.seed = int(seed)
        self.location_encoder = build_location_encoder(le_cfg, seed=self.seed)
        self.location_encoder.build((None, 2))
        self.built = True

    @property
    def location_encoder_config(self) -> Dict[str, Any]:
        """The encoder's config as plain dicts (a fresh copy on every read)."""
        return self._location_encoder_cfg.to_dict()

    def build(self, input_shape=None):  # built in __init__
        self.built = True

    def call(self, lon_lat, training=False):
        return self.location_encoder(tf.cast(lon_lat, tf.float32), training=training)

    def get_config(self) -> Dict[str, Any]:
        return {"location_encoder": self.location_encoder_config, "seed": self.seed,
                "name": self.name}


def encoder_model(csp_model) -> keras.Model:
    """A copy of a CSPModel's location encoder (same config, same weights)."""
    enc = StandaloneLocationEncoder(csp_model.location_encoder_config, seed=csp_model.seed,
                                    name="csp_location_encoder")
    enc.location_encoder.set_weights(csp_model.location_encoder.get_weights())
    return enc


class _EmbeddingModule(tf.Module):
    def __init__(self, encoder: keras.Model):
        super().__init__()
        self.encoder = encoder

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="lon_lat")])
    def location_embedding(self, lon_lat):
        return {"embedding": self.encoder(lon_lat, training=False)}


def export_location_encoder(csp_model, out_dir: str, *, config=None,
                            card: Optional[Dict[str, Any]] = None,
                            sources_md: Optional[str] = None) -> str:
    """Writes ``out_dir`` (replaced) with the .keras file, the SavedModel and the metadata;
    checks that both reload to the same embeddings as ``csp_model``."""
    return export_encoder(encoder_model(csp_model), out_dir, config=config, card=card,
                          sources_md=sources_md, reference=csp_model.location_embedding)


def export_encoder(enc: "StandaloneLocationEncoder", out_dir: str, *, config=None,
                   card: Optional[Dict[str, Any]] = None, sources_md: Optional[str] = None,
                   reference=None) -> str:
    """``export_location_encoder`` for an encoder model itself (e.g. GeoCLIP's port); both
    reloads are checked against ``reference(points)`` (default: ``enc`` before saving)."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    enc.save(os.path.join(out_dir, KERAS_FILE))
    module = _EmbeddingModule(enc)
    tf.saved_model.save(module, os.path.join(out_dir, SAVED_MODEL_DIR),
                        signatures={"location_embedding": module.location_embedding})
    if config is not None:
        config.save(os.path.join(out_dir, "config.yaml"))
    if sources_md:
        with open(os.path.join(out_dir, "SOURCES.md"), "w") as f:
            f.write(sources_md)
    probe = np.array([[-122.4, 37.8], [2.35, 48.86], [151.2, -33.9], [0.0, 0.0]], np.float32)
    want = (reference or enc)(probe).numpy()
    got_keras = load_location_encoder(out_dir)(probe).numpy()
    sig = tf.saved_model.load(os.path.join(out_dir, SAVED_MODEL_DIR)).signatures["location_embedding"]
    got_sm = sig(lon_lat=tf.constant(probe))["embedding"].numpy()
    for name, got in (("keras", got_keras), ("saved_model", got_sm)):
        if not np.allclose(got, want, atol=1e-5):
            raise RuntimeError(f"exported {name} encoder differs from the trained one "
                               f"(max |Δ| {np.abs(got - want).max():.3g})")
    info = dict(card or {}, embedding_dim=int(want.shape[1]),
                check_points=probe.tolist(), check_embeddings_sha=_digest(want))
    with open(os.path.join(out_dir, "card.json"), "w") as f:
        json.dump(info, f, indent=2, default=str)
    return out_dir


def _digest(a: np.ndarray) -> str:
    import hashlib
    return hashlib.sha256(np.round(a, 4).astype(np.float32).tobytes()).hexdigest()[:16]
