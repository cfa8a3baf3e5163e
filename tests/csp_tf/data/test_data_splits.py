"""Stable hashes, split assignment, class ranks and the label-ratio rule."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.data import splits
from csp_tf.data.errors import DataError


def test_stable_hash_does_not_depend_on_the_process():
    ids = ["obs-1", "obs-2", "ünïcode", ""]
    here = [splits.stable_hash("split", i) for i in ids]
    code = ("from csp_tf.data import splits; "
            f"print([splits.stable_hash('split', i) for i in {ids!r}])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(here)
    assert splits.stable_hash("split", "a") != splits.stable_hash("rank", "a")
    assert all(0 <= splits.unit_hash("split", i) < 1 for i in ids)


def test_assign_split_follows_the_fractions():
    ids = [f"row-{i}" for i in range(20000)]
    got = [splits.assign_split(i, True, (0.6, 0.3, 0.1)) for i in ids]
    frac = {s: got.count(s) / len(got) for s in ("train", "val", "test")}
    assert abs(frac["train"] - 0.6) < 0.02 and abs(frac["val"] - 0.3) < 0.02
    assert splits.assign_split("x", False, (0.6, 0.3, 0.1)) == "pretrain"
    assert got == [splits.assign_split(i, True, (0.6, 0.3, 0.1)) for i in ids]


@pytest.mark.parametrize("bad", [(0.5, 0.5), (0.7, 0.2, 0.2), (-0.1, 0.6, 0.5), ("a", 0, 1), (0, 0.5, 0.5)])
def test_bad_fractions(bad):
    with pytest.raises(DataError):
        splits.check_fractions(bad)


def test_rank_order_ignores_input_order():
    ids = [f"id{i}" for i in range(50)]
    order = splits.rank_order(ids)
    assert sorted(order) == sorted(ids) and order == splits.rank_order(list(reversed(ids)))
    assert order != sorted(ids)  # hash order, not the id order


@pytest.mark.parametrize("n, r, k", [
    (10, 0.05, 1),   # 0.5 rounds half to even: 0, then at least 1
    (30, 0.05, 2),   # 1.5 -> 2
    (50, 0.05, 2),   # 2.5 -> 2 (half to even)
    (70, 0.05, 4),   # 3.5 -> 4
    (3, 0.1, 1),     # 0.3 -> at least 1
    (1, 0.05, 1),
    (200, 1.0, 200),
])
def test_keep_count_rule(n, r, k):
    assert splits.keep_count(n, r) == k
    assert int(splits.keep_count(np.array([n]), r)[0]) == k


def test_tf_mask_equals_numpy_mask():
    rng = np.random.default_rng(0)
    count = rng.integers(1, 400, size=5000)
    rank = (rng.random(5000) * count).astype(np.int64)
    rank[:100] = -1
    for r in (0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
        want = splits.label_ratio_mask(rank, count, r)
        got = splits.label_ratio_mask_tf(tf.constant(rank), tf.constant(count), r).numpy()
        np.testing.assert_array_equal(got, want)


def test_masks_are_nested():
    count = np.repeat(np.arange(1, 60), np.arange(1, 60))
    rank = np.concatenate([np.arange(n) for n in range(1, 60)])
    previous = np.zeros_like(rank, dtype=bool)
    for r in (0.05, 0.1, 0.2, 0.5, 1.0):
        mask = splits.label_ratio_mask(rank, count, r)
        assert np.all(mask[previous]) and mask.sum() >= previous.sum()
        previous = mask
    assert previous.all()


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "0.1"])
def test_bad_ratio(bad):
    with pytest.raises(DataError):
        splits.keep_count(10, bad)


# ----- the manifest's own split and subset columns: label_ratio_keep --------------------------
def _columns(rank, count, subset=None):
    cols = {"class_rank": np.asarray(rank, np.int64), "class_count": np.asarray(count, np.int64)}
    if subset is not None:
        cols["label_subset"] = np.asarray(subset, np.float32)
    return cols


def test_label_ratio_keep_uses_the_manifest_subset_else_the_rank_rule():
    # rows 0-2: manifest subsets 0.05 / 0.1 / 1.0; rows 3-5: no subset (-1), class of 20 rows
    cols = _columns([0, 1, 2, 0, 1, 2], [20] * 6, [0.05, 0.1, 1.0, -1, -1, -1])
    assert splits.label_ratio_keep(cols, 0.05).tolist() == [True, False, False, True, False, False]
    assert splits.label_ratio_keep(cols, 0.1).tolist() == [True, True, False, True, True, False]
    assert splits.label_ratio_keep(cols, 1.0).tolist() == [True] * 6
    # float32 storage of 0.1 is 0.10000000149: still inside the 0.1 subset (compared in float32)
    assert np.float32(0.1) > 0.1 and splits.label_ratio_keep(_columns([5], [20], [0.1]), 0.1)[0]


def test_label_ratio_keep_without_subsets_is_the_rank_rule():
    rng = np.random.default_rng(1)
    count = rng.integers(1, 300, size=2000)
    rank = (rng.random(2000) * count).astype(np.int64)
    for r in (0.05, 0.2, 1.0):
        want = splits.label_ratio_mask(rank, count, r)
        np.testing.assert_array_equal(splits.label_ratio_keep(_columns(rank, count), r), want)
        np.testing.assert_array_equal(
            splits.label_ratio_keep(_columns(rank, count, np.full(2000, -1.0)), r), want)


def test_label_ratio_keep_tf_equals_numpy_and_is_nested():
    rng = np.random.default_rng(2)
    n = 3000
    count = rng.integers(1, 200, size=n)
    rank = (rng.random(n) * count).astype(np.int64)
    subset = np.where(rng.random(n) < 0.5, rng.choice([0.05, 0.1, 0.2, 1.0], size=n), -1.0)
    cols = _columns(rank, count, subset)
    tensors = {k: tf.constant(v) for k, v in cols.items()}
    previous = np.zeros(n, bool)
    for r in (0.05, 0.1, 0.2, 0.5, 1.0):
        want = splits.label_ratio_keep(cols, r)
        np.testing.assert_array_equal(splits.label_ratio_keep(tensors, r).numpy(), want)
        assert np.all(want[previous])
        previous = want
    assert previous.all()


def test_manifest_split_and_subset_cells():
    assert splits.parse_manifest_split(" Train ") == "train"
    assert splits.parse_manifest_split("") is None and splits.parse_manifest_split(None) is None
    assert splits.parse_manifest_split(float("nan")) is None
    for bad in ("training", "dev", "1"):
        with pytest.raises(ValueError, match="not one of"):
            splits.parse_manifest_split(bad)
    assert splits.parse_manifest_subset("0.05") == 0.05 and splits.parse_manifest_subset(1) == 1.0
    assert splits.parse_manifest_subset(" ") is None
    for bad in ("0", "-0.1", "1.5", "nan", "half"):
        with pytest.raises(ValueError):
            splits.parse_manifest_subset(bad)
    assert splits.assign_split("x", True, (0.7, 0.15, 0.15), given="test") == "test"
