"""Data benchmark: Beam ingest throughput (rows/s) and tf.data parse rate (examples/s).

    python benchmarks/ingest.py --out runs/bench/ingest.json                  # benchmark world
    python benchmarks/ingest.py --size small --modes multi_processing in_memory --out x.json
    python benchmarks/ingest.py --num-unlabeled 200000 --num-labeled 50000 --out big.json

Generates a world (``csp_tf.data.world``), ingests it with the Beam DirectRunner in each mode
asked for (2 worker processes by default), then reads pretrain + train back the way
pre-training does (``csp_tf.data.reader.make_dataset``: shuffled, batched, parsed per batch)
and reports examples/s. Prints a table and writes the numbers as JSON to ``--out``.
``measure_parse_rate`` is importable, so a trainer benchmark can set the parse rate beside its
own consumption rate (examples/s of a training step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure_parse_rate(data_root: str, batch_size: int, splits: Sequence[str] = ("pretrain", "train"),
                       min_seconds: float = 3.0, shuffle: bool = True) -> float:
    """Examples/s that ``make_dataset`` delivers over ``splits`` of a data root (one process).

    One short warm-up (file opening, tracing), then whole epochs until ``min_seconds`` have
    passed; the rate counts every example delivered.
    """
    from csp_tf.data import reader

    meta = reader.read_metadata(data_root)
    files: List[str] = []
    for split in splits:
        files += reader.split_files(data_root, split)
    ds = reader.make_dataset(files, meta.feature_dim, batch_size, shuffle=shuffle, repeat=False)
    for _ in ds.take(3):
        pass
    examples, start = 0, time.perf_counter()
    while True:
        for batch in ds:
            examples += int(batch["label"].shape[0])
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return examples / elapsed


def measure_parse_rate_at_width(work_dir: str, feature_dim: int, rows: int = 16384,
                                batch_size: int = 1024, num_shards: int = 4, seed: int = 0,
                                min_seconds: float = 3.0) -> float:
    """Examples/s of ``make_dataset`` on records of ``feature_dim`` floats (the pre-training
    step's width), written directly with the schema's encoder (no Beam): the parse rate to set
    beside the step's consumption, record for record."""
    import tensorflow as tf

    from csp_tf.data import reader, schema

    rng = np.random.default_rng(seed)
    os.makedirs(work_dir, exist_ok=True)
    files = []
    for shard in range(num_shards):
        path = os.path.join(work_dir, f"width{feature_dim}-{shard:05d}.tfrecord.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as w:
            for i in range(shard, rows, num_shards):
                w.write(schema.encode_example({
                    "id": f"r{i}", "lon": float(rng.uniform(-180, 180)),
                    "lat": float(rng.uniform(-90, 90)), "label": int(i % 10),
                    "image_features": rng.standard_normal(feature_dim).astype(np.float32)}))
        files.append(path)
    ds = reader.make_dataset(files, feature_dim, batch_size, shuffle=True, repeat=False)
    for _ in ds.take(2):
        pass
    examples, start = 0, time.perf_counter()
    while True:
        for batch in ds:
            examples += int(batch["label"].shape[0])
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return examples / elapsed


def run(out: str, size: str = "benchmark", work_dir: Optional[str] = None, seed: int = 0,
        feature_dim: int = 64, num_unlabeled: Optional[int] = None, num_labeled: Optional[int] = None,
        modes: Sequence[str] = ("multi_processing",), num_shards: int = 8, batch_size: int = 1024,
        manifest_format: str = "csv", beam_args: Sequence[str] = (),
        step_feature_dim: int = 2048) -> Dict[str, Any]:
    """Runs the benchmark and writes the JSON report to ``out``; returns it."""
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world

    work = work_dir or tempfile.mkdtemp(prefix="csp_ingest_bench_")
    start = time.perf_counter()
    world = generate_world(os.path.join(work, "world"), size, feature_dim=feature_dim, seed=seed,
                           num_unlabeled=num_unlabeled, num_labeled=num_labeled,
                           manifest_format=manifest_format)
    generate_s = time.perf_counter() - start
    report: Dict[str, Any] = {
        "world": {"size": size, "rows": world["rows"], "species": len(world["class_names"]),
                  "feature_dim": feature_dim, "manifest_format": manifest_format,
                  "manifest_bytes": os.path.getsize(world["manifest"]),
                  "generate_s": round(generate_s, 2)},
        "ingest": {}, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "platform": platform.platform(),
                                  "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
    }
    root = None
    for mode in modes:
        root = os.path.join(work, f"data_{mode}")
        args = [f"--direct_running_mode={mode}"] + (["--direct_num_workers=1"] if mode == "in_memory" else [])
        start = time.perf_counter()
        summary = run_ingest(world["manifest"], root, feature_dim, class_names=world["class_names"],
                             num_shards=num_shards, beam_args=args + list(beam_args), overwrite=True)
        wall = time.perf_counter() - start
        report["ingest"][mode] = {"rows_in": summary["rows_in"], "pipeline_s": summary["elapsed_s"],
                                  "rows_per_s": summary["rows_per_s"], "wall_s": round(wall, 2),
                                  "rows_per_s_wall": round(summary["rows_in"] / wall, 1),
                                  "rows_out": summary["rows_out"]}
    rate = measure_parse_rate(root, batch_size)
    report["parse"] = {"batch_size": batch_size, "splits": ["pretrain", "train"],
                       "examples_per_s": round(rate, 1), "feature_dim": feature_dim}
    # The pre-training step consumes step_feature_dim-wide rows: parse records of that width too,
    # so "parse rate / step consumption" compares the same records.
    if step_feature_dim:
        wide = measure_parse_rate_at_width(os.path.join(work, f"width{step_feature_dim}"),
                                           step_feature_dim, batch_size=batch_size, seed=seed)
        report["parse_step_width"] = {"batch_size": batch_size, "feature_dim": step_feature_dim,
                                      "examples_per_s": round(wide, 1)}
    # other processes on the machine skew every number: keep the load next to them
    report["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    _print_table(report)
    return report


def _print_table(report: Dict[str, Any]) -> None:
    w = report["world"]
    print(f"\nworld: {w['rows']} rows, {w['species']} species, F={w['feature_dim']} "
          f"({w['manifest_format']}, {w['manifest_bytes'] / 1e6:.1f} MB), generated in {w['generate_s']} s "
          f"on {report['machine']['cpus']} CPUs (1-min load {report['machine']['load_avg_1m_at_start']} "
          f"-> {report['machine']['load_avg_1m_at_end']})")
    print(f"{'measure':<44}{'value':>14}")
    for mode, r in report["ingest"].items():
        print(f"{'ingest rows/s, DirectRunner ' + mode:<44}{r['rows_per_s']:>14,.0f}")
        print(f"{'  (incl. start-up and metadata, wall ' + str(r['wall_s']) + ' s)':<44}{r['rows_per_s_wall']:>14,.0f}")
    p = report["parse"]
    print(f"{'tf.data parse examples/s, batch ' + str(p['batch_size']):<44}{p['examples_per_s']:>14,.0f}")
    if "parse_step_width" in report:
        w = report["parse_step_width"]
        print(f"{'tf.data parse examples/s, F=' + str(w['feature_dim']):<44}{w['examples_per_s']:>14,.0f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON report path")
    parser.add_argument("--size", default="benchmark", choices=("tiny", "small", "benchmark"))
    parser.add_argument("--num-unlabeled", type=int, help="override the world's unlabeled rows")
    parser.add_argument("--num-labeled", type=int, help="override the world's labeled rows")
    parser.add_argument("--feature-dim", type=int, default=64)
    parser.add_argument("--format", dest="manifest_format", default="csv", choices=("csv", "jsonl", "parquet"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", help="where to write the world and data roots (default: a temp dir)")
    parser.add_argument("--modes", nargs="+", default=["multi_processing"],
                        choices=("multi_processing", "in_memory", "multi_threading"),
                        help="DirectRunner modes to time (default multi_processing, 2 workers)")
    parser.add_argument("--num-shards", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--step-feature-dim", type=int, default=2048,
                        help="also time parsing at the pre-training step's width (0: skip)")
    parser.add_argument("beam_args", nargs=argparse.REMAINDER, help="after --: extra Beam options")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    logging.getLogger("apache_beam.io.tfrecordio").setLevel(logging.ERROR)
    run(args.out, args.size, args.work_dir, args.seed, args.feature_dim, args.num_unlabeled,
        args.num_labeled, args.modes, args.num_shards, args.batch_size, args.manifest_format,
        [a for a in args.beam_args if a != "--"], args.step_feature_dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
