"""Stable hash splits, class ranks, and the label-ratio rule (docs/architecture.md,
docs/reference.md §8).

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
* A manifest may fix both instead (``split`` and ``subset`` columns): a row's ``split`` replaces
  the hash split, and a train row's ``subset`` s (stored as ``label_subset``, -1 when absent)
  puts it in the ratio-r subset iff ``s <= r``; rows without one follow the rank rule.
  ``label_ratio_keep`` is the one implementation of that combined rule (numpy and TensorFlow).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from csp_tf import features as fk
from csp_tf.data.errors import DataError

MANIFEST_SPLITS = ("train", "val", "test", "pretrain")
SUBSET_TOLERANCE = 1e-9

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


def assign_split(row_id: str, labeled: bool, fractions: Sequence[float],
                 given: Optional[str] = None) -> str:
    """The manifest's split when ``given``; else ``pretrain`` for unlabeled rows and
    train / val / test by the id's split hash for labeled ones."""
    if given:
        return given
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
    """k_c = max(1, round_half_even(n_c * r)) for scalars or arrays (docs/reference.md §8
    stratified)."""
    _check_ratio(ratio)
    k = np.maximum(1, np.round(np.asarray(class_count, dtype=np.float64) * float(ratio)))
    return k.astype(np.int64) if np.ndim(k) else int(k)


def label_ratio_mask(class_rank, class_count, ratio: float) -> np.ndarray:
    """Boolean mask of the rows kept at label ratio ``ratio`` (rows with rank -1 never kept)."""
    rank = np.asarray(class_rank, dtype=np.int64)
    count = np.asarray(class_count, dtype=np.int64)
    return (rank >= 0) & (rank < keep_count(count, ratio))


def label_ratio_keep(columns: Mapping[str, Any], ratio: float):
    """THE label-ratio rule: which rows of the train split are in the ratio-``ratio`` subset.

    ``columns`` holds ``class_rank``, ``class_count`` and optionally ``label_subset`` (arrays
    from ``reader.load_split_arrays`` or parsed tensors; a missing ``label_subset`` = all -1).
    A row is kept iff ``label_subset >= 0 and label_subset <= ratio + 1e-9`` (the manifest's
    subset) or ``label_subset < 0`` and the stratified class_rank rule keeps it. Returns a
    boolean numpy array, or a boolean tensor when the columns are tensors.

    ``ratio`` is compared at the float32 precision ``label_subset`` is stored in (0.1 is stored
    as 0.10000000149, which must still be in the 0.1 subset).
    """
    _check_ratio(ratio)
    rank, count = columns[fk.CLASS_RANK], columns[fk.CLASS_COUNT]
    subset = columns.get(fk.LABEL_SUBSET)
    limit = float(np.float32(ratio)) + SUBSET_TOLERANCE
    if _is_tensor(rank):
        import tensorflow as tf  # local: this module stays importable without TensorFlow

        by_rank, where = label_ratio_mask_tf(rank, count, ratio), tf.where
        subset = None if subset is None else tf.cast(subset, tf.float64)
    else:
        by_rank, where = label_ratio_mask(rank, count, ratio), np.where
        subset = None if subset is None else np.asarray(subset, dtype=np.float64)
    return by_rank if subset is None else where(subset >= 0, subset <= limit, by_rank)


def parse_manifest_split(value: Any) -> Optional[str]:
    """A manifest ``split`` cell -> one of MANIFEST_SPLITS, None when empty; ValueError if bad."""
    text = _cell_text(value)
    if text is None:
        return None
    if text.lower() not in MANIFEST_SPLITS:
        raise ValueError(f"{text!r} is not one of {', '.join(MANIFEST_SPLITS)}")
    return text.lower()


def parse_manifest_subset(value: Any) -> Optional[float]:
    """A manifest ``subset`` cell -> a ratio in (0, 1], None when empty; ValueError if bad."""
    text = _cell_text(value)
    if text is None:
        return None
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 < ratio <= 1.0:  # also rejects NaN
        raise ValueError(f"{ratio!r} is not in (0, 1]")
    return ratio


def _cell_text(value: Any) -> Optional[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("tensorflow")


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
