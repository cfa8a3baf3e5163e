"""The manifest's own ``split`` / ``subset`` columns and the image-feature statistics
the ingest writes into metadata.json."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from csp_tf import features as fk
from csp_tf.data import reader, splits
from csp_tf.data.ingest import run_ingest

from data_test_helpers import read_dead_letter

CLASSES = ("ant", "bee", "cat")


def _manifest_rows():
    """60 labeled rows with fixed splits and nested subsets, 20 hash-split labeled rows,
    10 unlabeled rows (one sent to pretrain explicitly) and 3 bad split / subset cells."""
    rng = np.random.default_rng(0)
    rows = []

    def add(row_id, label, split="", subset=""):
        feats = rng.normal(5.0, 2.0, size=4).round(4)
        rows.append({"id": row_id, "lon": f"{rng.uniform(-170, 170):.4f}",
                     "lat": f"{rng.uniform(-60, 60):.4f}", "label": label, "split": split,
                     "subset": subset, "features": " ".join(map(str, feats))})

    for i in range(60):
        label = CLASSES[i % 3]
        if i < 36:  # train: subsets 0.05 (first 3), 0.1 (next 3), 0.2 (next 6), else 1
            subset = "0.05" if i < 3 else "0.1" if i < 6 else "0.2" if i < 12 else "1"
            add(f"fixed-{i:02d}", label, "train", subset)
        else:
            add(f"fixed-{i:02d}", label, "val" if i < 48 else "test")
    for i in range(20):
        add(f"hash-{i:02d}", CLASSES[i % 3])
    for i in range(10):
        add(f"unl-{i:02d}", "", "pretrain" if i == 0 else "")
    add("bad-split", "ant", "training")
    add("bad-unlabeled-train", "", "train")
    add("bad-subset", "bee", "train", "0")
    return rows


@pytest.fixture(scope="module")
def split_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("manifest_splits")
    rows = _manifest_rows()
    header = ["id", "lon", "lat", "label", "split", "subset", "features"]
    path = base / "m.csv"
    path.write_text(",".join(header) + "\n" + "".join(",".join(r[c] for c in header) + "\n" for r in rows))
    root = str(base / "root")
    summary = run_ingest(str(path), root, 4, in_process=True, num_shards=2)
    return {"root": root, "summary": summary, "rows": {r["id"]: r for r in rows}}


def test_manifest_splits_replace_the_hash_split(split_root):
    rows, root = split_root["rows"], split_root["root"]
    for split in fk.SPLITS:
        for row_id in reader.load_split_arrays(root, split)["id"]:
            given = rows[row_id]["split"]
            if given:
                assert split == given, row_id
            elif rows[row_id]["label"]:
                assert split == splits.assign_split(row_id, True, (0.7, 0.15, 0.15)), row_id
            else:
                assert split == "pretrain"
    out = split_root["summary"]["rows_out"]
    assert out["pretrain"] == 10 and sum(out.values()) == 90


def test_bad_split_and_subset_cells_are_dead_lettered(split_root):
    dead = {r["row"]["id"]: r for r in read_dead_letter(split_root["root"])}
    assert {k: (v["field"], v["reason"]) for k, v in dead.items()} == {
        "bad-split": ("split", "bad_split"), "bad-unlabeled-train": ("split", "bad_split"),
        "bad-subset": ("subset", "bad_subset")}
    assert "'training' is not one of train, val, test, pretrain" in dead["bad-split"]["detail"]


def test_label_subset_is_stored_for_train_rows_and_minus_one_elsewhere(split_root):
    rows, root = split_root["rows"], split_root["root"]
    train = reader.load_split_arrays(root, "train")
    for row_id, subset in zip(train["id"], train["label_subset"]):
        want = float(rows[row_id]["subset"]) if rows[row_id]["subset"] else fk.NO_SUBSET
        assert subset == np.float32(want), row_id
    for split in ("pretrain", "val", "test"):
        assert set(reader.load_split_arrays(root, split)["label_subset"]) == {fk.NO_SUBSET}


@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.2, 0.5, 1.0])
def test_every_reader_keeps_the_same_label_ratio_subset(split_root, ratio):
    """Manifest subsets decide for the fixed rows, the class_rank rule for the hash-split ones;
    load_split_arrays, DataRoot.labeled (every stage's path) and make_dataset agree."""
    from csp_tf.train.data_root import DataRoot

    rows, root = split_root["rows"], split_root["root"]
    full = reader.load_split_arrays(root, "train")
    by_rank = splits.label_ratio_mask(full["class_rank"], full["class_count"], ratio)
    want = set()
    for i, row_id in enumerate(full["id"]):
        subset = rows[row_id]["subset"]
        if (subset and float(subset) <= ratio) or (not subset and by_rank[i]):
            want.add(row_id)
    got = reader.load_split_arrays(root, "train", label_ratio=ratio)
    assert set(got["id"]) == want
    assert set(DataRoot.open(root).labeled("train", ratio)["id"]) == want
    files = reader.split_files(root, "train")
    streamed = reader.make_dataset(files, 4, 1000, shuffle=False, label_ratio=ratio)
    assert {i.decode() for b in streamed for i in b["id"].numpy()} == want
    fixed = {i for i in want if i.startswith("fixed-")}
    assert len(fixed) == {0.05: 3, 0.1: 6, 0.2: 12, 0.5: 12, 1.0: 36}[ratio]


# ----- feature statistics ---------------------------------------------------------------------
def test_feature_stats_equal_numpy_over_the_written_rows(split_root):
    root = split_root["root"]
    written = np.concatenate([reader.load_split_arrays(root, s)["image_features"] for s in fk.SPLITS])
    meta = reader.read_metadata(root)
    assert meta.feature_count == len(written) == 90
    np.testing.assert_allclose(meta.feature_mean, written.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(meta.feature_std, written.astype(np.float64).std(axis=0), rtol=1e-9)
    with open(os.path.join(root, "metadata.json")) as f:
        stats = json.load(f)["feature_stats"]
    assert set(stats) == {"count", "mean", "std", "std_floor"} and stats["std_floor"] == 1e-6


def test_old_data_roots_have_no_feature_stats(split_root, tmp_path):
    import shutil

    old = str(tmp_path / "old")
    shutil.copytree(split_root["root"], old)
    path = os.path.join(old, "metadata.json")
    with open(path) as f:
        meta = json.load(f)
    del meta["feature_stats"]
    with open(path, "w") as f:
        json.dump(meta, f)
    parsed = reader.read_metadata(old)
    assert parsed.feature_mean is None and parsed.feature_std is None and parsed.feature_count == 0
