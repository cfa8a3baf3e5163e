"""Sphere2Vec sphereC / sphereC+ / sphereM / sphereM+ / dfs (docs/reference.md §13.1), S2V
semantics."""

import math

import numpy as np
import pytest

from csp_tf.encoders.sphere import (DFSEncoder, SphereCEncoder, SphereCPlusEncoder, SphereMEncoder,
                                    SphereMPlusEncoder)

# docs/reference.md §13.1.3, verbatim. S = 2, r_min = 1, r_max = 360 (f = [1, 1/360]).
S2 = dict(frequency_num=2, min_radius=1.0, max_radius=360.0)
VECTORS_S2 = {
    (SphereCEncoder, (0, 0)): [0, 1, 0, 0, 1, 0],
    (SphereCEncoder, (90, 45)): [0.7071068, 0, 0.7071068, 0.0021817, 0.9999881, 0.0043633],
    (SphereCPlusEncoder, (0, 0)): [0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0],
    (SphereCPlusEncoder, (90, 45)): [0.7071068, 0.7071068, 1, 0, 0, 0.7071068, 0.0021817, 0.9999976,
                                     0.0043633, 0.9999905, 0.9999881, 0.0043633],
    (SphereMEncoder, (0, 0)): [0, 1, 1, 0, 0, 0, 1, 1, 0, 0],
    (SphereMEncoder, (90, 45)): [0.7071068, 0, 0, 0.7071068, 0.7071068, 0.0021817, 0, 0.7071001,
                                 0.9999976, 0.0030853],
    (SphereMPlusEncoder, (0, 0)): [0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0],
    (SphereMPlusEncoder, (90, 45)): [0.7071068, 0.7071068, 1, 0, 0, 0, 0.7071068, 0.7071068, 0.0021817,
                                     0.9999976, 0.0043633, 0.9999905, 0, 0.7071001, 0.9999976, 0.0030853],
    (DFSEncoder, (0, 0)): [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    (DFSEncoder, (90, 45)): [0.7071068, 0.0021817, 0.7071068, 0.9999976, 0.0030853, 0.0000095, 0.0030853,
                             0.0043633, 0, 0, 0, 0, 0.7071001, 0.0021816, 0.7071001, 0.9999881, 0.7071068,
                             0.7071068, 1, 0, 0.0021817, 0.9999976, 0.0043633, 0.9999905],
    (SphereCEncoder, (-120.5, -33.25)): [-0.5482932, -0.4244473, -0.7205685, -0.001612, 0.9999816, -0.005842],
    (DFSEncoder, (-120.5, -33.25)): [0.4724254, 0.001389, -0.7205685, -0.861628, 0.0032031, 0.0000094,
                                     -0.0048856, -0.005842, 0.2782798, 0.0008182, -0.4244473, -0.5075377,
                                     -0.5482839, -0.001612, 0.8362719, 0.9999816, -0.5482932, 0.8362862,
                                     -0.8616292, -0.5075384, -0.001612, 0.9999987, -0.005842, 0.9999829],
}
# S = 3, r_min = 1e-3, r_max = 1 (f = [1000, 31.6227766, 1]), point (-120.5, -33.25); atol 1e-4.
S3 = dict(frequency_num=3, min_radius=1e-3, max_radius=1.0)
VECTORS_S3 = {
    SphereCEncoder: [-0.7660444, 0.1116189, -0.6330222, 0.4778132, -0.7565609, 0.4464417, -0.5482932,
                     -0.4244473, -0.7205685],
    SphereMEncoder: [-0.7660444, 0.3262394, -0.1452196, 0.5538445, 0.8235811, 0.4778132, -0.4458529,
                     -0.7202381, -0.756908, 0.4250078, -0.5482932, -0.4244473, -0.4244473, -0.7205685,
                     -0.7205685],
}


@pytest.mark.parametrize("cls,point", list(VECTORS_S2), ids=lambda v: getattr(v, "registry_name", str(v)))
def test_vectors_s2(cls, point, encode):
    np.testing.assert_allclose(encode(cls(**S2), [point])[0], VECTORS_S2[(cls, point)], atol=1e-6)


@pytest.mark.parametrize("cls", list(VECTORS_S3), ids=lambda c: c.registry_name)
def test_vectors_s3_high_frequency(cls, encode):
    np.testing.assert_allclose(encode(cls(**S3), [(-120.5, -33.25)])[0], VECTORS_S3[cls], atol=1e-4)


@pytest.mark.parametrize("cls,width", [(SphereCEncoder, 3), (SphereCPlusEncoder, 6), (SphereMEncoder, 5),
                                       (SphereMPlusEncoder, 8)])
def test_dims(cls, width):
    assert cls(frequency_num=4).embedding_dim == width * 4
    assert cls().embedding_dim == width * 32  # S2V defaults: S = 32, r = 1e-6 .. 1
    assert cls().min_radius == 1e-6 and cls().max_radius == 1.0


def test_dfs_dim():
    assert DFSEncoder(frequency_num=3, min_radius=0.1, max_radius=1).embedding_dim == 4 * 9 + 4 * 3
    assert DFSEncoder(frequency_num=8).embedding_dim == 288


def test_radii_are_radian_multiples(encode):
    # r = 1 → f = 1: the scaled angle is the plain radian angle (one period per 360° of lon).
    enc = SphereCPlusEncoder(frequency_num=2, min_radius=1.0, max_radius=1.0)
    got = encode(enc, [(30.0, 60.0)])[0]
    phi, lam = math.radians(60), math.radians(30)
    np.testing.assert_allclose(got[:4], [math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)], atol=1e-6)
