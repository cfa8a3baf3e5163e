"""Stable hash splits, class ranks, and the label-ratio rule (docs/architecture.md, SPEC §8).

Everything here is a pure function of the row id (never Python's salted ``hash()``), so the
same manifest gives the same splits and subsets on every machine, runner and run.

* Labeled rows go to train / val / test by ``unit_hash("split", id)`` against the cumulative
  split fractions; unlabeled rows always go to ``pretrain``.
* Inside the train split, each class's rows are ranked by ``stable_hash("rank", id)`` (ties
  broken by the id): ``class_rank`` 0..n_c-1, ``class_count`` n_c.
* Label ratio r keeps a train row iff ``class_rank < k_c`` with
  ``k_c = max(1, round_half_even(n_c * r))``: deterministic, stratified (every class keeps at
  least one row) and nested (r1 < r2 => subset(r1) ⊂ subset(r2)), because ranks are fixed and
  k_c is monotone in r.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, List, Sequence, Tuple

import numpy as np

from csp_tf.data.errors import DataError

_TWO_64 = float(2 ** 64)


def stable_hash(salt: str, key: str) -> int:
    """64-bit unsigned hash of ``salt:key`` (BLAKE2b), identical across processes and hosts."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit_hash(salt: str, key: str) -> float:
    """``stable_hash`` mapped to [0, 1)."""
    return stable_hash(salt, key) / _TWO_64


def check_fractions(fractions: Sequence[float]) -> Tuple[float, float, float]:
    """Validates (train, val, test) fractions: three numbers >= 0 summing to 1 (±1e-6)."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise DataError(f"split fractions {fractions!r} must be three numbers") from None
    if len(values) != 3 or any(not np.isfinite(v) or v < 0 for v in values):
        raise DataError(f"split fractions {fractions!r} must be three numbers >= 0 (train, val, test)")
    if abs(sum(values) - 1.0) > 1e-6:
        raise DataError(f"split fractions {fractions!r} must sum to 1, not {sum(values):g}")
    if values[0] <= 0:
        raise DataError(f"split fractions {fractions!r}: the train fraction must be > 0")
    return values  # type: ignore[return-value]


def assign_split(row_id: str, labeled: bool, fractions: Sequence[float]) -> str:
    """``pretrain`` for unlabeled rows, else train / val / test by the id's split hash."""
    if not labeled:
        return "pretrain"
    u = unit_hash("split", row_id)
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"


def rank_order(row_ids: Iterable[str]) -> List[str]:
    """The ids of one class in rank order (``class_rank`` = position in this list)."""
    return sorted(row_ids, key=lambda i: (stable_hash("rank", i), i))


def keep_count(class_count, ratio: float):
    """k_c = max(1, round_half_even(n_c * r)) for scalars or arrays (SPEC §8 stratified)."""
    _check_ratio(ratio)
    k = np.maximum(1, np.round(np.asarray(class_count, dtype=np.float64) * float(ratio)))
    return k.astype(np.int64) if np.ndim(k) else int(k)


def label_ratio_mask(class_rank, class_count, ratio: float) -> np.ndarray:
    """Boolean mask of the rows kept at label ratio ``ratio`` (rows with rank -1 never kept)."""
    rank = np.asarray(class_rank, dtype=np.int64)
    count = np.asarray(class_count, dtype=np.int64)
    return (rank >= 0) & (rank < keep_count(count, ratio))


def label_ratio_mask_tf(class_rank, class_count, ratio: float):
    """The same rule as ``label_ratio_mask`` on int64 tensors (tf.math.round is half-to-even)."""
    import tensorflow as tf  # local: this module stays importable without TensorFlow

    _check_ratio(ratio)
    k = tf.maximum(tf.constant(1.0, tf.float64),
                   tf.math.round(tf.cast(class_count, tf.float64) * float(ratio)))
    return (class_rank >= 0) & (tf.cast(class_rank, tf.float64) < k)


def _check_ratio(ratio: float) -> None:
    if not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) <= 1.0:
        raise DataError(f"label_ratio={ratio!r} must be a number in (0, 1]")
