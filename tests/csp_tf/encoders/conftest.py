"""Fixtures shared by the encoder tests."""

import numpy as np
import pytest


@pytest.fixture
def encode():
    """encode(layer, points) -> float32 numpy features of float32 (lon, lat) degrees."""

    def _encode(layer, points):
        out = layer(np.asarray(points, np.float32))
        assert out.dtype == "float32"
        return out.numpy()

    return _encode
