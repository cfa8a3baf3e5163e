"""Keras models of csp-tf: the location encoder networks and the CSP model."""

from csp_tf.models.csp_model import CSPModel, build_csp_model, fuse, missing_location_mask
from csp_tf.models.location_encoder import (DiagHead, FCNet, FeedForwardNet, LocationEncoder,
                                            build_location_encoder)
from csp_tf.models.capsules import CapsuleSum
from csp_tf.models.siren import SirenNet

__all__ = ["CSPModel", "CapsuleSum", "DiagHead", "FCNet", "FeedForwardNet", "LocationEncoder",
           "SirenNet", "build_csp_model", "build_location_encoder", "fuse", "missing_location_mask"]
