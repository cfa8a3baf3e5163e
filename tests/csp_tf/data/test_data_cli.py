"""The ``generate`` and ``ingest`` sub-commands."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from csp_tf.data import cli, reader


def _parser():
    parser = argparse.ArgumentParser(prog="csp-tf")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_generate_parser(sub)
    cli.add_ingest_parser(sub)
    return parser


@pytest.mark.parametrize("command, words", [
    ("generate", ["--size", "benchmark", "--ingest", "true_ranges.npz", "examples"]),
    ("ingest", ["--manifest", "--feature-dim", "--backbone-weights", "dead_letter", "DataflowRunner"]),
])
def test_help_is_written_for_newcomers(capsys, command, words):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text


def test_generate_with_ingest_and_beam_args_without_separator(tmp_path, capsys):
    out = str(tmp_path / "world")
    code = cli.main(["generate", "--out", out, "--size", "tiny", "--seed", "2", "--ingest",
                     "--inject-bad-rows", "--in-process", "--num-shards", "2",
                     "--direct_num_workers=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "world: 8 species" in printed and "rejected" in printed
    for name in ("manifest.csv", "labels.txt", "world.json", "true_ranges.npz"):
        assert os.path.exists(os.path.join(out, name))
    with open(os.path.join(out, "data", "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "world.json")) as f:
        assert summary["rejected"] == json.load(f)["counts"]["bad_rows"]
    assert len(reader.split_files(os.path.join(out, "data"), "train")) == 2


def test_ingest_command_with_labels_and_beam_args_after_separator(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "lon": 1, "lat": 2, "label": "b", "features": [1, 2]}\n'
                        '{"id": "b", "lon": 1, "lat": 2, "label": "zz", "features": [1, 2]}\n')
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    args = _parser().parse_args(["ingest", "--manifest", str(manifest), "--out", str(tmp_path / "o"),
                                 "--feature-dim", "2", "--labels", str(labels), "--num-shards", "1",
                                 "--", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    assert args.func(args) == 0
    assert "unknown_label 1" in capsys.readouterr().out
    assert reader.read_metadata(str(tmp_path / "o")).class_names == ["a", "b"]


def test_errors_are_one_line_and_exit_code_2(tmp_path, capsys):
    args = _parser().parse_args(["ingest", "--manifest", str(tmp_path / "none.csv"),
                                 "--out", str(tmp_path / "o"), "--feature-dim", "4"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("csp-tf ingest: error:") and "matches no files" in err and "Traceback" not in err
    args = _parser().parse_args(["generate", "--out", str(tmp_path / "w"), "--num-groups", "99"])
    assert args.func(args) == 2
    assert "num_groups" in capsys.readouterr().err
