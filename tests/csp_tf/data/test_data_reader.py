"""tf.data reader: shapes, shuffling, label-ratio subsets, damaged files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.data import reader, splits
from csp_tf.data.errors import DataError


def _ids(ds):
    return [i.decode() for batch in ds for i in batch["id"].numpy()]


def test_batches_have_the_contract_shapes_and_dtypes(jsonl_ingest):
    root = jsonl_ingest["root"]
    files = reader.split_files(root, "pretrain") + reader.split_files(root, "train")
    batch = next(iter(reader.make_dataset(files, 64, 16, drop_remainder=True)))
    assert set(batch) == set(reader.OUTPUT_KEYS)
    assert batch["lon_lat"].dtype == tf.float32 and batch["lon_lat"].shape == (16, 2)
    assert batch["image_features"].dtype == tf.float32 and batch["image_features"].shape == (16, 64)
    assert batch["label"].dtype == tf.int64 and batch["label"].shape == (16,)
    assert batch["id"].dtype == tf.string and batch["region"].dtype == tf.string
    lon, lat = batch["lon_lat"].numpy().T
    assert np.all(np.abs(lon) <= 180) and np.all(np.abs(lat) <= 90)


def test_one_epoch_reads_every_row_once(jsonl_ingest):
    root = jsonl_ingest["root"]
    files = reader.split_files(root, "pretrain") + reader.split_files(root, "train")
    ids = _ids(reader.make_dataset(files, 64, 50))
    rows = jsonl_ingest["summary"]["rows_out"]
    assert len(ids) == len(set(ids)) == rows["pretrain"] + rows["train"]


def test_shuffle_is_reproducible_with_a_seed_and_deterministic(jsonl_ingest):
    files = reader.split_files(jsonl_ingest["root"], "pretrain")
    a = _ids(reader.make_dataset(files, 64, 32, seed=3, deterministic=True))
    b = _ids(reader.make_dataset(files, 64, 32, seed=3, deterministic=True))
    c = _ids(reader.make_dataset(files, 64, 32, seed=4, deterministic=True))
    plain = _ids(reader.make_dataset(files, 64, 32, shuffle=False, deterministic=True))
    assert a == b and a != c and sorted(a) == sorted(c) == sorted(plain) and a != plain


def test_repeat_and_labeled_only(jsonl_ingest):
    root = jsonl_ingest["root"]
    files = reader.split_files(root, "pretrain") + reader.split_files(root, "train")
    ds = reader.make_dataset(files, 64, 64, repeat=True, labeled_only=True, drop_remainder=True)
    for batch in ds.take(20):  # more rows than the train split holds: it repeats
        assert batch["label"].shape == (64,) and np.all(batch["label"].numpy() >= 0)


def test_label_ratio_subsets_are_stratified_nested_and_deterministic(csv_ingest):
    root = csv_ingest["root"]
    meta = reader.read_metadata(root)
    files = reader.split_files(root, "train")
    subsets = {}
    train = reader.load_split_arrays(root, "train")
    for ratio in (0.05, 0.1, 0.2, 0.5, 1.0):
        arrays = reader.load_split_arrays(root, "train", label_ratio=ratio)
        counts = np.bincount(arrays["label"], minlength=meta.num_classes)
        want = [splits.keep_count(n, ratio) if n else 0 for n in meta.train_class_counts]
        assert counts.tolist() == want  # k_c = max(1, round_half_even(n_c * r)) per class
        subsets[ratio] = set(arrays["id"])
        keep = splits.label_ratio_mask(train["class_rank"], train["class_count"], ratio)
        assert list(arrays["id"]) == list(train["id"][keep])
    for ratio in (0.1, 0.5):  # the tf.data filter picks the same rows as the numpy one
        streamed = _ids(reader.make_dataset(files, 64, 7, label_ratio=ratio, seed=1))
        assert sorted(streamed) == sorted(subsets[ratio])
    ratios = sorted(subsets)
    for small, large in zip(ratios, ratios[1:]):
        assert subsets[small] < subsets[large]
    assert subsets[1.0] == set(reader.load_split_arrays(root, "train")["id"])


def test_label_ratio_batches_are_full(csv_ingest):
    files = reader.split_files(csv_ingest["root"], "train")
    sizes = [int(b["label"].shape[0]) for b in reader.make_dataset(files, 64, 5, label_ratio=0.5,
                                                                    drop_remainder=True)]
    assert sizes and set(sizes) == {5}


def test_metadata_and_split_errors(tmp_path, jsonl_ingest):
    with pytest.raises(DataError, match="not a csp-tf data root"):
        reader.read_metadata(str(tmp_path))
    with pytest.raises(DataError, match="unknown split"):
        reader.split_files(jsonl_ingest["root"], "training")
    with pytest.raises(DataError, match="train split only"):
        reader.load_split_arrays(jsonl_ingest["root"], "val", label_ratio=0.1)
    with pytest.raises(DataError, match="label_ratio"):
        reader.make_dataset(reader.split_files(jsonl_ingest["root"], "train"), 64, 8, label_ratio=1.5)
    with pytest.raises(DataError, match="no files"):
        reader.make_dataset([], 64, 8)


@pytest.fixture()
def damaged_root(tmp_path, jsonl_ingest):
    root = str(tmp_path / "root")
    shutil.copytree(jsonl_ingest["root"], root)
    return root


def test_truncated_shard_in_a_data_root_names_the_file(damaged_root):
    files = reader.split_files(damaged_root, "train")
    victim = files[1]
    data = open(victim, "rb").read()
    with open(victim, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(DataError, match=os.path.basename(victim) + ".*truncated"):
        reader.make_dataset(files, 64, 8)
    with pytest.raises(DataError, match=os.path.basename(victim)):
        reader.load_split_arrays(damaged_root, "train")


def test_corrupt_shard_of_the_same_size_names_the_file(damaged_root):
    files = reader.split_files(damaged_root, "pretrain")
    victim = files[0]
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    with open(victim, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(DataError, match=os.path.basename(victim)):
        reader.load_split_arrays(damaged_root, "pretrain")
    with pytest.raises(tf.errors.DataLossError) as caught:
        for _ in reader.make_dataset(files, 64, 8, shuffle=False):
            pass
    error = reader.explain_data_loss(caught.value, files)
    assert isinstance(error, DataError) and victim in str(error)


def test_truncated_gz_outside_a_data_root(tmp_path, jsonl_ingest):
    source = reader.split_files(jsonl_ingest["root"], "pretrain")[0]
    data = open(source, "rb").read()
    loose = str(tmp_path / "loose.tfrecord.gz")
    with open(loose, "wb") as f:
        f.write(data[: len(data) // 3])
    with pytest.raises(DataError, match="loose.tfrecord.gz.*corrupt or truncated"):
        reader.verify_files([source, loose])
    assert reader.verify_files([source]) > 0
    with pytest.raises(DataError, match="does not exist"):
        reader.make_dataset([str(tmp_path / "gone.tfrecord.gz")], 64, 8)
