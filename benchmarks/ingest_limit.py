"""The ingest against its limit: the same work in one tight process without Beam, then
``csp-tf ingest`` (the Beam pipeline, DirectRunner defaults) on the same manifest.

    python benchmarks/ingest_limit.py --out runs/bench/ingest_limit.json           # 10^6 rows
    python benchmarks/ingest_limit.py --rows 100000 --out x.json --work-dir runs/il  # reuses the manifest
    python benchmarks/ingest_limit.py --rows 100000 --out x.json -- --direct_num_workers=1

The limit runs the ingest's own steps (``csp_tf.data.ingest_transforms``: read a range, parse
and validate, settle a bucket, rank the classes, encode and gzip-write every shard and the dead
letter, the statistics) chained by plain Python grouping instead of Beam's GroupByKey, then
writes metadata.json and summary.json like the ingest (``outputs.write_outputs``). So both
write the same records, byte for byte; the benchmark checks that. It reports rows/s and MB/s
of manifest for each and ``ingest / limit`` (rows/s). The manifest is JSON Lines with 128
features a row (a typical image-embedding width), 30 % labeled rows over 500 classes and 0.1 %
bad rows; it is written once into ``--work-dir`` and reused.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FEATURE_DIM = 128
NUM_CLASSES = 500
NUM_SHARDS = 4
FRACTIONS = (0.7, 0.15, 0.15)


# ----- the manifest ---------------------------------------------------------------------------------
def write_manifest(path: str, rows: int, feature_dim: int = FEATURE_DIM, seed: int = 0) -> List[str]:
    """A JSON Lines manifest of ``rows`` rows (0.1 % of them bad); returns the class names."""
    rng = np.random.default_rng(seed)
    names = [f"species_{c:03d}" for c in range(NUM_CLASSES)]
    tmp = path + ".part"
    row_fmt = ('{"id": "obs-%08d", "lon": %.5f, "lat": %.5f, "label": "%s", "features": ['
               + ", ".join(["%.4f"] * feature_dim) + "]}\n")
    with open(tmp, "w") as f:
        for start in range(0, rows, 10000):
            n = min(10000, rows - start)
            lon, lat = rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)
            labeled = rng.random(n) < 0.3
            labels = np.minimum(rng.zipf(1.3, n) - 1, NUM_CLASSES - 1)
            feats = rng.standard_normal((n, feature_dim)).astype(np.float32)
            out = []
            for i in range(n):
                row_id = start + i
                line = row_fmt % (row_id, lon[i], lat[i], names[labels[i]] if labeled[i] else "",
                                  *feats[i])
                if row_id % 1000 == 7:  # 0.1 % bad rows of three kinds the ingest dead-letters
                    kind = (row_id // 1000) % 3
                    if kind == 0:
                        line = line.replace('"lon": ', '"lon": 2', 1)  # lon out of range (or bad)
                    elif kind == 1:
                        line = line.replace(f'"obs-{row_id:08d}"', f'"obs-{row_id - 1:08d}"', 1)  # duplicate id
                    else:
                        line = line.replace("[", "[1.0, ", 1)  # one feature too many
                out.append(line)
            f.write("".join(out))
    os.replace(tmp, path)
    return names


# ----- the limit: the ingest's steps in one process ------------------------------------------------
def run_limit(manifest: str, out_dir: str, feature_dim: int, class_names: Sequence[str],
              num_shards: int, fractions: Sequence[float] = FRACTIONS) -> Dict[str, Any]:
    """The ingest's work without Beam; returns the summary ``outputs.write_outputs`` writes."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from csp_tf.data import ingest_rows
    from csp_tf.data import ingest_transforms as t
    from csp_tf.data.ingest import _size
    from csp_tf.data.manifests import READ_BUNDLE_BYTES, find_manifests
    from csp_tf.data.outputs import write_outputs

    start = time.perf_counter()
    manifests = find_manifests(manifest)
    headers = {m.path: m.header for m in manifests}
    vocabulary = list(class_names)
    read = t.ReadAndParseFn(headers, feature_dim, frozenset(vocabulary), num_shards, False, 32)
    triples: List[Tuple[str, Any, Any]] = []
    for m in manifests:
        for part in ingest_rows.plan_ranges(m.fmt, m.path, _size(m.path), READ_BUNDLE_BYTES):
            triples.extend(read.process(part))
    settled = _apply(t.SettleBucketFn(headers, fractions, True, num_shards, False),
                     _group(triples, t.ROWS))
    ranks = _apply(t.RankClassFn(num_shards), _group(settled, t.RANK))
    vocab = _apply(t.VocabularyFn(vocabulary, num_shards), [(t.LABELS_KEY, [])])
    written = _apply(t.WriteBucketFn(out_dir, num_shards),
                     _group(triples + settled + ranks + vocab, t.WRITE))
    for _ in _apply(t.WriteStatsFn(out_dir), _group(triples + ranks + vocab + written, t.STATS)):
        pass
    return write_outputs(out_dir, manifests, feature_dim, vocabulary, fractions, None,
                         time.perf_counter() - start, {}, PipelineOptions(["--runner=none"]))


def _group(triples: Iterable[Tuple[str, Any, Any]], kind: str) -> List[Tuple[Any, List[Any]]]:
    groups: Dict[Any, List[Any]] = collections.defaultdict(list)
    for k, key, value in triples:
        if k == kind:
            groups[key].append(value)
    return list(groups.items())


def _apply(fn, elements: Iterable[Any]) -> List[Tuple[str, Any, Any]]:
    return [out for element in elements for out in fn.process(element)]


# ----- the comparison ------------------------------------------------------------------------------
def root_digest(root: str) -> Dict[str, str]:
    """sha256 of every shard and dead-letter file of a data root, and of its metadata.json."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel.endswith((".tfrecord.gz", ".jsonl")) or rel == "metadata.json":
                with open(os.path.join(root, rel), "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(out.items()))


def run(out: str, rows: int, work_dir: Optional[str], feature_dim: int, num_shards: int,
        beam_args: Sequence[str], seed: int = 0) -> Dict[str, Any]:
    from csp_tf.data.ingest import run_ingest

    work = work_dir or tempfile.mkdtemp(prefix="csp_ingest_limit_")
    os.makedirs(work, exist_ok=True)
    manifest = os.path.join(work, f"manifest-{rows}x{feature_dim}-s{seed}.jsonl")
    names_path = manifest + ".labels.json"
    if not (os.path.exists(manifest) and os.path.exists(names_path)):
        t0 = time.perf_counter()
        names = write_manifest(manifest, rows, feature_dim, seed)
        with open(names_path, "w") as f:
            json.dump(names, f)
        print(f"wrote {manifest} in {time.perf_counter() - t0:.0f} s", flush=True)
    with open(names_path) as f:
        names = json.load(f)
    mb = os.path.getsize(manifest) / 1e6
    report: Dict[str, Any] = {
        "manifest": {"rows": rows, "feature_dim": feature_dim, "format": "jsonl", "mb": round(mb, 1),
                     "num_shards": num_shards},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
    }
    limit_root, ingest_root = os.path.join(work, "root_limit"), os.path.join(work, "root_ingest")
    for root in (limit_root, ingest_root):
        shutil.rmtree(root, ignore_errors=True)

    os.makedirs(limit_root)
    t0 = time.perf_counter()
    limit = run_limit(manifest, limit_root, feature_dim, names, num_shards)
    limit_s = time.perf_counter() - t0
    report["limit"] = _figures(limit["rows_in"], limit_s, mb)

    t0 = time.perf_counter()
    ingest = run_ingest(manifest, ingest_root, feature_dim, class_names=names, num_shards=num_shards,
                        beam_args=list(beam_args))
    wall = time.perf_counter() - t0
    report["ingest"] = {**_figures(ingest["rows_in"], wall, mb), "runner": ingest["runner"],
                        "beam_args": list(beam_args), "pipeline_s": ingest["elapsed_s"]}
    report["ratio_ingest_over_limit"] = round(report["ingest"]["rows_per_s"] / report["limit"]["rows_per_s"], 3)
    a, b = root_digest(limit_root), root_digest(ingest_root)
    report["same_output"] = a == b
    report["rows_out"] = ingest["rows_out"]
    report["rejected"] = ingest["rejected"]
    report["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    _print(report)
    if not report["same_output"]:
        raise SystemExit(f"the limit and the ingest wrote different files: "
                         f"{sorted(set(a.items()) ^ set(b.items()))[:4]}")
    return report


def _figures(rows_in: int, seconds: float, mb: float) -> Dict[str, float]:
    return {"rows_in": rows_in, "seconds": round(seconds, 2), "rows_per_s": round(rows_in / seconds, 1),
            "mb_per_s": round(mb / seconds, 2)}


def _print(r: Dict[str, Any]) -> None:
    m = r["manifest"]
    print(f"\nmanifest: {m['rows']:,} rows, F={m['feature_dim']}, {m['mb']:.0f} MB JSONL, "
          f"{m['num_shards']} shards; {r['machine']['cpus']} CPUs, 1-min load "
          f"{r['machine']['load_avg_1m_at_start']} -> {r['machine']['load_avg_1m_at_end']}")
    print(f"{'':<34}{'seconds':>10}{'rows/s':>12}{'MB/s':>9}")
    for key, label in (("limit", "limit (one process, no Beam)"), ("ingest", "ingest (Beam, wall)")):
        x = r[key]
        print(f"{label:<34}{x['seconds']:>10.1f}{x['rows_per_s']:>12,.0f}{x['mb_per_s']:>9.2f}")
    print(f"ingest / limit (rows/s): {r['ratio_ingest_over_limit']:.2f}   "
          f"same shards, dead letter and metadata: {r['same_output']}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON report path")
    parser.add_argument("--rows", type=int, default=1_000_000, help="manifest rows (default 10^6)")
    parser.add_argument("--feature-dim", type=int, default=FEATURE_DIM)
    parser.add_argument("--num-shards", type=int, default=NUM_SHARDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", help="where the manifest (kept, reused) and both data roots go")
    parser.add_argument("beam_args", nargs=argparse.REMAINDER, help="after --: Beam options for the ingest")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    run(args.out, args.rows, args.work_dir, args.feature_dim, args.num_shards,
        [a for a in args.beam_args if a != "--"], args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
