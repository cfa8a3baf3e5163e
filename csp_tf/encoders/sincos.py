"""sin and cos of the same float64 angles in one pass, from plain arithmetic.

The position encoders evaluate sin and cos of thousands of angles per row batch in float64 (the
reference computes its features in float64 numpy, then casts to float32). TensorFlow's float64
``tf.sin``/``tf.cos`` are scalar libm calls under XLA on a CPU, and each repeats the argument
reduction. ``sincos`` reduces the argument once (Cody–Waite, k = round(a·2/π), r = a − k·π/2 with
π/2 split so that k·PIO2_HI is exact for |k| < 2²⁰) and evaluates the Cephes double-precision
minimax polynomials of sin and cos on |r| ≤ π/4 (relative error < 2.3e-16), then picks each
result by the quadrant k mod 4. Only multiplies, adds and selects: XLA fuses and vectorises it.

Only under XLA: TensorFlow's own kernels run ``tf.sin``/``tf.cos`` as one kernel each, where this
formulation is ~20 separate kernels, slower without fusion (``in_xla_context`` picks).

Accuracy: within a few float64 ulps of libm for |a| < 2²⁰·π/2 ≈ 1.6e6 rad (the CSP encoders stay
below 2e4), so after the cast to float32 the features equal the ``tf.sin``/``tf.cos`` ones except
where a float64 value lies within ~1e-16 of a float32 rounding boundary (then they differ by one
float32 ulp). Larger angles are reduced less exactly; inf/nan give nan, as libm does.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

_TWO_OVER_PI = 0.63661977236758134308
_PIO2_HI = 1.57079632673412561417e+00  # the first 33 bits of π/2: k·_PIO2_HI is exact
_PIO2_LO = 6.07710050650619224932e-11  # π/2 − _PIO2_HI

# Cephes sin.c, |x| ≤ π/4: sin x = x + x·z·P(z), cos x = 1 − z/2 + z²·Q(z), z = x².
_SIN = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
        -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
_COS = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
        2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)


def _poly(z: tf.Tensor, coefs) -> tf.Tensor:
    acc = tf.constant(coefs[0], z.dtype)
    for c in coefs[1:]:
        acc = acc * z + c
    return acc


def sincos(angles: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(sin(angles), cos(angles)) of a float64 tensor, each float64 of the same shape."""
    a = tf.convert_to_tensor(angles, tf.float64)
    k = tf.round(a * _TWO_OVER_PI)
    r = (a - k * _PIO2_HI) - k * _PIO2_LO
    z = r * r
    s = r + r * z * _poly(z, _SIN)
    c = 1.0 - 0.5 * z + z * z * _poly(z, _COS)
    # Quadrant k mod 4 (k is integral; floormod keeps negatives in 0..3). Through int64 only for
    # finite k: a nan/inf angle keeps nan in s and c, and whatever quadrant it gets, stays nan.
    q = tf.math.floormod(tf.cast(tf.where(tf.math.is_finite(k), k, 0.0), tf.int64), 4)
    swap = tf.equal(tf.bitwise.bitwise_and(q, 1), 1)  # odd quadrants: sin ↔ cos
    sin_v, cos_v = tf.where(swap, c, s), tf.where(swap, s, c)
    sin_neg = q >= 2  # sin(r + kπ/2) is −sin r (k=2) or −cos r (k=3)
    cos_neg = tf.logical_or(tf.equal(q, 1), tf.equal(q, 2))
    return tf.where(sin_neg, -sin_v, sin_v), tf.where(cos_neg, -cos_v, cos_v)


def in_xla_context() -> bool:
    """True while tracing a function that XLA compiles (``jit_compile=True``, nested included)."""
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def sin_cos(angles: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """``sincos`` under XLA, else ``tf.sin``/``tf.cos`` (float64 in, float64 out, same values but
    for the last float64 bit)."""
    if in_xla_context():
        return sincos(angles)
    return tf.sin(angles), tf.cos(angles)
