"""Position encoders, one per module, reachable by reference name through ``ENCODERS``."""

import dataclasses

from csp_tf.encoders.base import (ENCODERS, PositionEncoder, geometric_frequencies, lookup_encoder,
                                  register_encoder)
# Imported for their registration side effect.
from csp_tf.encoders import (geoclip, gridcell, gridcell_hash, hexagridcell, naive,  # noqa: F401
                             nerf, rbf, rff, sphere, spherical_harmonics, theory, tile, wrap)


def build_position_encoder(cfg) -> PositionEncoder:
    """Builds the encoder a ``PositionEncoderConfig`` names from its options (their fields are
    the encoder's constructor arguments); unknown names raise ValueError."""
    return lookup_encoder(cfg.type)(**dataclasses.asdict(cfg.options))


__all__ = ["ENCODERS", "PositionEncoder", "build_position_encoder", "geometric_frequencies",
           "lookup_encoder", "register_encoder"]
