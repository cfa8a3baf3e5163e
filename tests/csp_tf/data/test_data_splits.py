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
