"""rff (docs/reference.md §2.9): variance [QUIRK] and bandwidth modes."""

import math

import numpy as np
import pytest

from csp_tf.encoders.rff import RFFEncoder


def test_formula(encode):
    enc = RFFEncoder(frequency_num=5, rbf_kernel_size=2.0, seed=1)
    assert enc.embedding_dim == 5
    omega, bias = np.array(enc.omega), np.array(enc.bias)
    assert omega.shape == (2, 5) and np.all((bias >= 0) & (bias < 2 * math.pi))
    pts = [(0, 0), (90, 45), (-120.5, -33.25)]
    x = np.array(pts) / [180.0, 90.0]
    expected = math.sqrt(2 / 5) * np.cos(x @ omega + bias)
    np.testing.assert_allclose(encode(enc, pts), expected, atol=1e-6)


def test_given_omega_and_bias(encode):
    enc = RFFEncoder(frequency_num=2, omega=[[1.0, 0.0], [0.0, 2.0]], bias=[0.0, 0.5])
    got = encode(enc, [(90, 45)])  # x = (0.5, 0.5)
    np.testing.assert_allclose(got, [[math.cos(0.5), math.cos(1.5)]], atol=1e-7)
    with pytest.raises(ValueError, match="omega must be"):
        RFFEncoder(frequency_num=3, omega=[[1.0, 0.0], [0.0, 2.0]])


@pytest.mark.parametrize("mode,std", [("variance", 2.0), ("bandwidth", 0.25)])
def test_kernel_modes(mode, std):
    # kernel size 4: variance mode ([QUIRK]) ω ~ N(0, 4) (std 2); bandwidth ω ~ N(0, 4^-2).
    enc = RFFEncoder(frequency_num=4000, rbf_kernel_size=4.0, rff_kernel_mode=mode, seed=0)
    assert np.std(enc.omega) == pytest.approx(std, rel=0.05)


def test_seeded():
    a, b = RFFEncoder(frequency_num=3, seed=1), RFFEncoder(frequency_num=3, seed=1)
    assert a.omega == b.omega and a.bias == b.bias
    assert RFFEncoder(frequency_num=3, seed=2).omega != a.omega
    with pytest.raises(ValueError, match="rff_kernel_mode"):
        RFFEncoder(rff_kernel_mode="std")
