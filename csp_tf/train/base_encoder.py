"""A location-encoder directory as fine-tuning's base model (``csp-tf finetune --base-model``).

Besides a ``csp-tf pretrain`` output (checkpoints), a base may be an encoder directory in the
shipped layout of csp_tf.pretrained (``location_encoder.keras``, ``config.yaml``): a shipped
encoder by name (``places``), an ``export-encoder`` output, or GeoCLIP's port
(``csp-tf geoclip export``). Only the location encoder's weights are taken; the class head and
the image side start fresh, and there is no optimizer state to carry.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

from csp_tf.configs import ConfigError, ExperimentConfig, LocationEncoderConfig

log = logging.getLogger(__name__)


def resolve_base(name_or_dir: str) -> str:
    """A shipped encoder's name (csp_tf.pretrained.available()) -> its directory; else as given."""
    from csp_tf.pretrained import available

    return available().get(name_or_dir, name_or_dir)


def is_encoder_dir(path: str) -> bool:
    from csp_tf.pretrained import KERAS_FILE

    return (os.path.isfile(os.path.join(path, KERAS_FILE))
            and not os.path.isdir(os.path.join(path, "checkpoints")))


def for_new_data(config: ExperimentConfig, base_dir: str) -> ExperimentConfig:
    """``config`` with ``data.feature_dim`` / ``num_classes`` left to the data root when the base
    is an encoder directory: its saved config holds the shapes of the data it was trained on
    (the shipped ``places``: 38 features, 194 classes), which the encoder itself does not need."""
    if not is_encoder_dir(base_dir):
        return config
    cfg = config.copy()
    cfg.data.feature_dim = cfg.data.num_classes = 0
    return cfg


def resolved_fields(cfg: LocationEncoderConfig) -> Dict[str, Any]:
    """``cfg.model_fields()`` with the position options it leaves to a seed or a schedule set to
    what they draw (csp_tf.models.location_encoder.with_drawn_options): a saved encoder lists
    them, the config it was trained from does not, and both build the same encoder."""
    from csp_tf.encoders import build_position_encoder
    from csp_tf.models.location_encoder import with_drawn_options

    return with_drawn_options(cfg.model_fields(), build_position_encoder(cfg.position))


def load_base_encoder(model, base_dir: str, config: ExperimentConfig,
                      carry_optimizer_state: bool = False) -> None:
    """Copies the encoder directory's location-encoder weights into ``model``.

    ConfigError where the directory's encoder (its .keras config) is not the one this run
    builds (the same fields rule as a pre-training base: ``model_fields``).
    """
    from csp_tf.pretrained import load_location_encoder

    enc = load_location_encoder(base_dir)
    base_cfg = LocationEncoderConfig.from_dict(enc.location_encoder_config, "location_encoder.")
    if resolved_fields(base_cfg) != resolved_fields(config.location_encoder):
        raise ConfigError(f"the base encoder {base_dir!r} is {base_cfg} but this run builds "
                          f"{config.location_encoder}: fine-tune without --preset/--config to "
                          "take the encoder's config.yaml, or set the same location_encoder")
    src, dst = enc.location_encoder.weights, model.location_encoder.weights
    if [tuple(v.shape) for v in src] != [tuple(v.shape) for v in dst]:
        raise ConfigError(f"the base encoder {base_dir!r} has weights of other shapes than "
                          "this run's location encoder")
    for d, s in zip(dst, src):
        d.assign(s.numpy())
    log.info("loaded the location encoder of %s (%d variables)%s", base_dir, len(dst),
             "; an encoder directory has no optimizer state: a fresh one is used"
             if carry_optimizer_state else "")
