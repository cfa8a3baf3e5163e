"""``query`` and ``serve-dev`` sub-commands: JSON on stdout, errors on stderr with exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from serving import cli, contract


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_importing_the_cli_does_not_import_tensorflow():
    probe = ("import sys, serving.cli; "
             "sys.exit(int('tensorflow' in sys.modules or 'grpc' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_register_on_a_parent_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="csp-tf")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli.add_query_parser(subparsers)
    cli.add_serve_parser(subparsers)
    args = parser.parse_args(["query", "classify", "--lon", "-122.4", "--lat", "37.8",
                              "--features", "1,2", "--version", "3"])
    assert (args.kind, args.lon, args.version, args.func) == ("classify", -122.4, 3,
                                                              cli._run_points)
    args = parser.parse_args(["serve-dev", "--model-base-path", "/m", "--version-label",
                              "stable=1"])
    assert args.func is cli._run_serve and args.port == contract.GRPC_PORT


def test_query_prior_single_point(capsys, server, standin_model):
    code, out, _ = _run(capsys, "query", "prior", "--address", server.address,
                        "--lon", "2.35", "--lat", "48.86")
    assert code == 0
    payload = json.loads(out)
    assert payload["version"] == 1 and payload["query"] == "prior"
    want = standin_model.signatures[contract.LOCATION_PRIOR](
        lon_lat=tf.constant([[2.35, 48.86]]))[contract.PROBABILITIES].numpy()
    np.testing.assert_allclose(payload["results"][0][contract.PROBABILITIES], want[0], atol=1e-5)


def test_query_classify_and_embed_from_csv(capsys, server, tmp_path):
    path = tmp_path / "points.csv"
    rows = ["lon,lat," + ",".join(f"f{i}" for i in range(8))]
    rows += [f"{lon},{lat}," + ",".join(["0.5"] * 8) for lon, lat in
             ((2.35, 48.86), (-122.4, 37.8), (151.2, -33.9))]
    path.write_text("\n".join(rows) + "\n")
    code, out, _ = _run(capsys, "query", "classify", "--address", server.address,
                        "--csv", str(path), "--batch-size", "2")
    assert code == 0
    results = json.loads(out)["results"]
    assert [r["row"] for r in results] == [0, 1, 2]
    assert len(results[2][contract.TOP_K_CLASSES]) == 3
    code, out, _ = _run(capsys, "query", "embed", "--address", server.address, "--csv", str(path))
    assert code == 0 and len(json.loads(out)["results"][1][contract.EMBEDDING]) == 4


def test_query_metadata_and_status(capsys, server):
    code, out, _ = _run(capsys, "query", "metadata", "--address", server.address)
    assert code == 0 and set(json.loads(out)["signatures"]) == set(contract.SIGNATURES)
    code, out, _ = _run(capsys, "query", "status", "--address", server.address)
    assert code == 0
    assert json.loads(out)["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("csv_text, words", [
    ("lon,lat\n1,2\n3,x\n", ("points.csv:3", "'lat'", "'x' is not a number")),
    ("lon,lat\n1,2\n3,95\n", ("row 1", "lat=95")),
    ("longitude,lat\n1,2\n", ("lacks", "lon")),
])
def test_bad_csv_exits_2_naming_the_problem(capsys, server, tmp_path, csv_text, words):
    path = tmp_path / "points.csv"
    path.write_text(csv_text)
    code, out, err = _run(capsys, "query", "prior", "--address", server.address,
                          "--csv", str(path))
    assert code == 2 and out == ""
    message = json.loads(err)["error"]
    for word in words:
        assert word in message, (word, message)


def test_unknown_model_exits_1(capsys, server):
    code, _, err = _run(capsys, "query", "status", "--address", server.address,
                        "--model", "nope")
    assert code == 1 and "NOT_FOUND" in json.loads(err)["error"]


def test_classify_needs_features(capsys, server):
    code, _, err = _run(capsys, "query", "classify", "--address", server.address,
                        "--lon", "1", "--lat", "2")
    assert code == 2 and "image features" in json.loads(err)["error"]


def test_query_labels_uses_the_classify_rpc(capsys, server, tmp_path):
    path = tmp_path / "points.csv"
    rows = ["lon,lat," + ",".join(f"f{i}" for i in range(8))]
    rows += [f"{lon},{lat}," + ",".join(["0.5"] * 8) for lon, lat in
             ((2.35, 48.86), ("nan", "nan"))]
    path.write_text("\n".join(rows) + "\n")
    code, out, _ = _run(capsys, "query", "labels", "--address", server.address, "--csv", str(path))
    assert code == 0
    results = json.loads(out)["results"]
    assert results[1]["lon"] is None  # both NaN: no location, image-only
    for row in results:
        assert len(row[contract.CLASSES]) == len(row[contract.SCORES]) == 3
        assert all(c.startswith("standin_class_") for c in row[contract.CLASSES])
    path.write_text("lon,lat,f0\nnan,45,0.5\n")
    code, _, err = _run(capsys, "query", "labels", "--address", server.address, "--csv", str(path))
    assert code == 2 and "row 0: lon=nan" in json.loads(err)["error"]
