"""benchmarks/run_all.py: the report shows n/a for keys a JSON lacks and never invents values."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", os.path.join(REPO, "benchmarks", "run_all.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_missing_keys_are_na_and_listed(run_all, tmp_path):
    json_dir = tmp_path / "j"
    json_dir.mkdir()
    # train_step with one number missing, serving_load complete enough, ingest absent.
    (json_dir / "train_step.json").write_text(json.dumps({
        "setup": {"device": "CPU", "batch": 1024},
        "xla_off": {"step_ms": 80.0, "examples_per_s": 12800.0, "ratio_to_matmul_chain": 0.5},
        "xla_on": {"step_ms": 40.0, "examples_per_s": 25600.0, "step_gflops": 12.3,
                   "ratio_to_matmul_chain": 0.9},
        "xla_speedup": 2.0}))
    (json_dir / "serving_load.json").write_text(json.dumps({
        "in_process": {"p50_ms": 1.0}, "grpc": [{"concurrency": 1, "p50_ms": 1.4, "throughput_rps": 500.0},
                                                {"concurrency": 8, "p50_ms": 3.0, "throughput_rps": 2000.0}],
        "ratio_grpc_p50_over_in_process": 1.4, "target_ratio": 1.5, "total_errors": 0}))
    out = tmp_path / "bench.md"
    rc = run_all.main(["--from-json", str(json_dir), "--out", str(out),
                       "--only", "train_step,serving_load,ingest"])
    text = out.read_text()
    assert rc == 1  # ingest has no JSON
    assert "| XLA speed-up (step time off / on) | 2.00 |" in text
    assert "| peak RSS (MB) | n/a |" in text
    assert "`train_step`: `peak_rss_mb` is not in its JSON" in text
    assert "| throughput at the highest / the lowest concurrency | 4.00 |" in text
    assert "`serving_load`: `grpc.0.p99_ms` is not in its JSON" in text
    assert "| ingest | missing: no " in text
    assert "12800" in text and "n/a" in text


def test_a_failing_script_is_reported_not_filled_in(run_all, tmp_path, monkeypatch):
    bench = run_all.Benchmark("broken", "Broken", "benchmarks/run_all.py",
                              lambda j, w, q: [[run_all.PY, "-c", "import sys; print('boom'); sys.exit(3)"]],
                              rows=(run_all.Row("x", "x"),))
    r = run_all.run_benchmark(bench, str(tmp_path), str(tmp_path), quick=True, timeout_s=60)
    assert r["status"] == "failed" and "exited 3" in r["reason"]
    text = run_all.render({"broken": r}, [bench], quick=True, source="test")
    assert "Not measured (failed" in text and "boom" in text


def test_place_memory_benchmark_runs_and_renders(run_all, tmp_path):
    """The real script at a small size (pruned by caps): its search agrees with the BallTree and
    with a scan of every place, and every row the report reads for a run it made is in its JSON."""
    import subprocess

    json_dir = tmp_path / "j"
    json_dir.mkdir()
    subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "place_memory.py"),
                    "--sizes", "3000", "--batches", "64", "--rounds", "1", "--layouts", "clustered",
                    "--out", str(json_dir / "place_memory.json")], check=True, cwd=REPO)
    data = json.loads((json_dir / "place_memory.json").read_text())
    (row,) = data["rows"]
    assert row["places"] == 3000 and row["max_distance_diff_km"] < 1e-6
    assert row["max_distance_diff_to_scan_km"] < 1e-6 and 0 < row["proven_fraction"] <= 1
    assert 0 < row["fraction_of_scan_limit"] and row["search_ms"] > 0 and row["scan_ms"] > 0
    out = tmp_path / "bench.md"
    run_all.main(["--from-json", str(json_dir), "--out", str(out), "--only", "place_memory"])
    text = out.read_text()
    assert "| uniform, N = 20 000 places, batch 1: search (ms) | n/a |" in text
    # the cases the report names were not run: listed as missing, never filled from another case
    assert "cases.uniform_20000_1.search_ms" in text and "clustered_3000" not in text
