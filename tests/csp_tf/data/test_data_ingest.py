"""Beam ingest: round trips for CSV / JSONL / Parquet, the dead letter, counts, determinism, errors."""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest

from csp_tf import features as fk
from csp_tf.data import reader
from csp_tf.data.errors import DataError
from csp_tf.data.ingest import find_manifests, make_pipeline_options, run_ingest

from data_test_helpers import read_dead_letter, read_manifest_rows


def _check_round_trip(ingest) -> None:
    world, root, summary = ingest["world"], ingest["root"], ingest["summary"]
    counts = world["json"]["counts"]
    # every row read is either written or rejected, and the counts match what was generated
    assert summary["rows_in"] == counts["manifest_rows"]
    assert summary["rows_in"] == sum(summary["rows_out"].values()) + sum(summary["rejected"].values())
    assert summary["rejected"] == counts["bad_rows"]
    assert sum(summary["rows_out"].values()) == counts["rows"]
    with open(os.path.join(root, "summary.json")) as f:
        assert json.load(f) == summary

    meta = reader.read_metadata(root)
    assert meta.feature_dim == 64 and meta.class_names == world["class_names"]
    assert meta.num_classes == len(world["class_names"])
    assert {s: meta.splits[s].rows for s in fk.SPLITS} == summary["rows_out"]
    assert sum(meta.train_class_counts) == summary["rows_out"]["train"]
    with open(os.path.join(root, "labels.txt")) as f:
        assert f.read().splitlines() == world["class_names"]
    for split in fk.SPLITS:
        files = reader.split_files(root, split)
        assert len(files) == 3 and all(f.endswith(".tfrecord.gz") for f in files)

    expected = read_manifest_rows(world["manifest"])
    seen = set()
    for split in fk.SPLITS:
        arrays = reader.load_split_arrays(root, split)
        assert len(arrays["id"]) == summary["rows_out"][split]
        for i, row_id in enumerate(arrays["id"]):
            seen.add(row_id)
            row = expected.get(row_id)
            if row is None:  # an injected duplicate id: either copy may be the one kept
                continue
            np.testing.assert_array_equal(arrays["image_features"][i], row["features"])
            np.testing.assert_allclose(arrays["lon_lat"][i], [row["lon"], row["lat"]], atol=1e-4)
            if split == "pretrain":
                assert row["label"] is None and arrays["label"][i] == -1
            else:
                assert world["class_names"][arrays["label"][i]] == row["label"]
    assert seen == set(expected)


def _check_dead_letter(ingest) -> None:
    records = read_dead_letter(ingest["root"])
    reasons = collections.Counter(r["reason"] for r in records)
    assert dict(reasons) == ingest["world"]["bad_rows"]
    for record in records:
        assert set(record) == {"row", "field", "reason", "source", "detail"}
        assert record["source"].endswith(os.path.basename(ingest["world"]["manifest"]))
        row = record["row"]
        if isinstance(row, dict) and str(row.get("id", "")).startswith("bad-"):
            assert row["id"].split("-")[1] == record["reason"]  # each bad row for its own reason
    fields = {r["reason"]: r["field"] for r in records}
    assert fields["lon_out_of_range"] == "lon" and fields["lat_out_of_range"] == "lat"
    assert fields["unknown_label"] == "label" and fields["duplicate_id"] == "id"
    assert fields["feature_width"] == "features"


def test_csv_round_trip_default_multiprocessing_runner(csv_ingest):
    _check_round_trip(csv_ingest)
    _check_dead_letter(csv_ingest)
    assert set(csv_ingest["world"]["bad_rows"]) >= {"unparseable_row", "not_a_number", "bad_features"}


def test_jsonl_round_trip(jsonl_ingest):
    _check_round_trip(jsonl_ingest)
    _check_dead_letter(jsonl_ingest)


def test_parquet_round_trip(parquet_ingest):
    _check_round_trip(parquet_ingest)
    _check_dead_letter(parquet_ingest)


def test_beam_counters_match_the_summary(jsonl_ingest):
    summary = jsonl_ingest["summary"]
    counters = summary["beam_counters"]
    assert counters["rows_in"] == summary["rows_in"]
    for split, n in summary["rows_out"].items():
        assert counters.get(f"rows_out.{split}", 0) == n
    for reason, n in summary["rejected"].items():
        assert counters[f"rejected.{reason}"] == n


def test_same_manifest_gives_identical_splits_on_any_runner(csv_ingest, tmp_path):
    """Re-ingest in-process (other runner mode, other shard count): every split is identical."""
    world = csv_ingest["world"]
    root = str(tmp_path / "again")
    run_ingest(world["manifest"], root, 64, class_names=world["class_names"], num_shards=2,
               in_process=True)
    for split in fk.SPLITS:
        a = reader.load_split_arrays(csv_ingest["root"], split)
        b = reader.load_split_arrays(root, split)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{split}/{key}")
    assert reader.read_metadata(root).train_class_counts == reader.read_metadata(csv_ingest["root"]).train_class_counts


def test_rerun_writes_the_same_shard_bytes(csv_ingest, tmp_path):
    """The same manifest, runner and shard count give byte-identical shards: rows go to shards
    and take their order by their id (Beam's WriteToTFRecord shuffled rows across shards, so a
    streamed pre-training epoch differed from run to run)."""
    import hashlib

    world = csv_ingest["world"]
    root = str(tmp_path / "again")
    run_ingest(world["manifest"], root, 64, class_names=world["class_names"], num_shards=3,
               in_process=False)
    for split in fk.SPLITS:
        first, again = reader.split_files(csv_ingest["root"], split), reader.split_files(root, split)
        assert [os.path.basename(f) for f in first] == [os.path.basename(f) for f in again]
        for a, b in zip(first, again):
            assert hashlib.sha256(open(a, "rb").read()).digest() == \
                hashlib.sha256(open(b, "rb").read()).digest(), f"{split}: {os.path.basename(a)}"


def test_train_ranks_are_a_permutation_per_class(csv_ingest):
    train = reader.load_split_arrays(csv_ingest["root"], "train")
    meta = reader.read_metadata(csv_ingest["root"])
    for c in np.unique(train["label"]):
        mask = train["label"] == c
        n = int(mask.sum())
        assert sorted(train["class_rank"][mask]) == list(range(n))
        assert set(train["class_count"][mask]) == {n} and meta.train_class_counts[c] == n
    for split in ("pretrain", "val", "test"):
        other = reader.load_split_arrays(csv_ingest["root"], split)
        assert set(other["class_rank"]) <= {-1} and set(other["class_count"]) <= {0}


def test_split_fractions_and_regions(csv_ingest):
    out = csv_ingest["summary"]["rows_out"]
    labeled = out["train"] + out["val"] + out["test"]
    assert 0.6 < out["train"] / labeled < 0.8
    regions = set()
    for split in fk.SPLITS:
        regions |= set(reader.load_split_arrays(csv_ingest["root"], split)["region"])
    assert regions and "other" not in regions and len(regions) >= 3


def test_collected_vocabulary_features_path_and_image_rows_without_backbone(tmp_path):
    """Labels collected from the data; .npy feature files; image rows need a backbone."""
    np.save(tmp_path / "f1.npy", np.arange(2, dtype=np.float32))
    np.save(tmp_path / "f3.npy", np.arange(3, dtype=np.float32))
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,lon,lat,label,features,features_path,image_path\n"
                        'a,1,2,zebra,"[1, 2]",,\n'
                        "b,3,4,ant,3 4,,\n"
                        "c,5,6,,,f1.npy,\n"
                        "d,7,8,zebra,7 8,,\n"
                        "e,7,8,,,f3.npy,\n"
                        "f,7,8,,,missing.npy,\n"
                        "g,7,8,ant,,,photo.png\n")
    root = str(tmp_path / "out")
    summary = run_ingest(str(manifest), root, 2, in_process=True, num_shards=1)
    assert summary["rejected"] == {"feature_width": 1, "features_unreadable": 1, "no_backbone": 1}
    meta = reader.read_metadata(root)
    assert meta.class_names == ["ant", "zebra"]  # sorted labels of the valid rows
    assert summary["rows_out"]["pretrain"] == 1
    pretrain = reader.load_split_arrays(root, "pretrain")
    np.testing.assert_array_equal(pretrain["image_features"][0], [0, 1])
    labeled = np.concatenate([reader.load_split_arrays(root, s)["label"] for s in ("train", "val", "test")])
    assert sorted(labeled.tolist()) == [0, 1, 1]


# ----- errors a user can make: clear DataErrors before anything runs --------------------------
def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="matches no files"):
        run_ingest(str(tmp_path / "nope.csv"), str(tmp_path / "out"), 4)
    with pytest.raises(DataError, match="matches no files"):
        run_ingest(str(tmp_path / "*.parquet"), str(tmp_path / "out"), 4)


def test_unknown_manifest_format_and_bad_header(tmp_path):
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(DataError, match="unknown format"):
        find_manifests(str(tmp_path / "m.txt"))
    (tmp_path / "m.csv").write_text("id,longitude,lat,features\n")
    with pytest.raises(DataError, match="lacks lon"):
        find_manifests(str(tmp_path / "m.csv"))


def test_bad_beam_options_are_clear_errors():
    with pytest.raises(DataError, match="bad Beam option"):
        make_pipeline_options(["--direct_running_mode=sideways"], in_process=False)
    with pytest.raises(DataError, match="unknown Beam option.*--no_such_flag"):
        make_pipeline_options(["--no_such_flag=1"], in_process=False)
    options = make_pipeline_options(["--runner=DataflowRunner", "--project=p"], in_process=False)
    assert options.get_all_options()["runner"] == "DataflowRunner"


@pytest.mark.parametrize("kwargs, message", [
    ({"feature_dim": 0}, "feature_dim"),
    ({"split_fractions": (0.5, 0.2, 0.2)}, "sum to 1"),
    ({"split_fractions": (0.0, 0.5, 0.5)}, "train fraction"),
    ({"num_shards": -1}, "num_shards"),
    ({"class_names": ["a", "a"]}, "repeat"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,lon,lat,features\na,0,0,1 2\n")
    args = {"feature_dim": 2, **kwargs}
    with pytest.raises(DataError, match=message):
        run_ingest(str(manifest), str(tmp_path / "out"), **args)


def test_existing_output_needs_overwrite(csv_ingest):
    with pytest.raises(DataError, match="overwrite"):
        run_ingest(csv_ingest["world"]["manifest"], csv_ingest["root"], 64)
