"""Counter-based random numbers that are bit-identical with and without XLA.

TensorFlow's stateless RNG kernels draw different numbers under ``jit_compile`` than without
it (even with ``alg="philox"`` on CPU), so a step compiled with XLA would follow a different
trajectory than the same step without. Dropout masks and random negative locations therefore
come from an integer hash of (seed, element index) built from plain int64 ops, which XLA and
the TF kernels evaluate identically. The mixer is a 32-bit invertible avalanche hash
(``x ^= x >> 16; x *= 0x45d9f3b`` twice); multipliers stay < 2³¹ so int64 products never
overflow. Quality is ample for dropout and negative sampling, not for cryptography.
"""

from __future__ import annotations

import tensorflow as tf

_MASK = 0xFFFFFFFF
_MUL = 0x45D9F3B  # python ints: a tf.constant at import would start the eager context


_xor, _and, _shr = tf.bitwise.bitwise_xor, tf.bitwise.bitwise_and, tf.bitwise.right_shift


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """Invertible 32-bit avalanche mix of int64 values holding uint32."""
    for _ in range(2):
        x = _and(_xor(_shr(x, 16), x) * tf.constant(_MUL, tf.int64), tf.constant(_MASK, tf.int64))
    return _xor(_shr(x, 16), x)


def _mix32_u32(x: tf.Tensor) -> tf.Tensor:
    """``_mix32`` on uint32 tensors: the same bits (products wrap mod 2³² instead of being
    masked), at half the memory traffic and without the three masking ops."""
    mul = tf.constant(_MUL, tf.uint32)
    sixteen = tf.constant(16, tf.uint32)
    for _ in range(2):
        x = _xor(_shr(x, sixteen), x) * mul
    return _xor(_shr(x, sixteen), x)


def uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """float32 U[0, 1) of ``shape`` from a [2] integer ``seed``; 24 random bits per value.

    Value i (row-major) is ``mix(mix(i ^ k0) ^ k1) >> 8`` / 2²⁴ with (k0, k1) mixed from the seed.
    The per-element hash runs in uint32 (bit-identical to the int64-with-mask form it replaced,
    ``tests/csp_tf/train/test_step_perf_equivalence.py``); the seed keys stay in int64.
    """
    seed = tf.cast(seed, tf.int64)
    mask = tf.constant(_MASK, tf.int64)
    k0 = _mix32(_and(seed[0], mask))
    k1 = _mix32(_xor(_and(seed[1], mask), tf.constant(0x5BD1E995, tf.int64)))
    k0, k1 = tf.cast(k0, tf.uint32), tf.cast(k1, tf.uint32)  # values < 2³²: exact
    n = tf.reduce_prod(tf.cast(shape, tf.int64))
    # Element indices mod 2³² (the int64 form masked them the same way).
    i = tf.cast(_and(tf.range(n, dtype=tf.int64), mask), tf.uint32)
    x = _mix32_u32(_xor(_mix32_u32(_xor(i, k0)), k1))
    u = tf.cast(_shr(x, tf.constant(8, tf.uint32)), tf.float32) * (1.0 / (1 << 24))
    return tf.reshape(u, shape)


def uniform_int64_reference(shape, seed: tf.Tensor) -> tf.Tensor:
    """The original int64 formulation of ``uniform`` (kept for the equivalence tests)."""
    seed = tf.cast(seed, tf.int64)
    mask = tf.constant(_MASK, tf.int64)
    k0 = _mix32(_and(seed[0], mask))
    k1 = _mix32(_xor(_and(seed[1], mask), tf.constant(0x5BD1E995, tf.int64)))
    n = tf.reduce_prod(tf.cast(shape, tf.int64))
    i = _and(tf.range(n, dtype=tf.int64), mask)
    x = _mix32(_xor(_mix32(_xor(i, k0)), k1))
    u = tf.cast(_shr(x, 8), tf.float32) * (1.0 / (1 << 24))
    return tf.reshape(u, shape)


def fold_in(seed: tf.Tensor, salt) -> tf.Tensor:
    """A new [2] int64 seed from ``seed`` and an integer ``salt`` (XLA-identical)."""
    seed = tf.cast(seed, tf.int64)
    mask = tf.constant(_MASK, tf.int64)
    salt = _and(tf.cast(salt, tf.int64), mask)
    a = _mix32(_xor(_and(seed[0], mask), _mix32(salt)))
    b = _mix32(_xor(_and(seed[1], mask), _mix32(_xor(salt, tf.constant(0x27D4EB2F, tf.int64)))))
    return tf.stack([a, b])
