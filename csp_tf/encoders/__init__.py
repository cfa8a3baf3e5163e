"""Position encoders, one per module, reachable by reference name through ``ENCODERS``."""

import dataclasses

from csp_tf.encoders.base import ENCODERS, PositionEncoder, geometric_frequencies, register_encoder
# Imported for their registration side effect.
from csp_tf.encoders import gridcell  # noqa: F401
from csp_tf.encoders import hexagridcell  # noqa: F401
from csp_tf.encoders import naive  # noqa: F401
from csp_tf.encoders import nerf  # noqa: F401
from csp_tf.encoders import rbf  # noqa: F401
from csp_tf.encoders import rff  # noqa: F401
from csp_tf.encoders import sphere  # noqa: F401
from csp_tf.encoders import spherical_harmonics  # noqa: F401
from csp_tf.encoders import theory  # noqa: F401
from csp_tf.encoders import tile  # noqa: F401
from csp_tf.encoders import wrap  # noqa: F401


def build_position_encoder(cfg) -> PositionEncoder:
    """Builds the encoder a ``PositionEncoderConfig`` names from its options (their fields are
    the encoder's constructor arguments); unknown names raise ValueError."""
    return ENCODERS.lookup(cfg.type)(**dataclasses.asdict(cfg.options))


__all__ = ["ENCODERS", "PositionEncoder", "build_position_encoder", "geometric_frequencies",
           "register_encoder"]
