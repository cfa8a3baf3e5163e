"""Pre-training past memory: `csp-tf pretrain` streaming data roots of growing size, with the
resident memory, the input pipeline's rate and the step rate for each.

    python benchmarks/pretrain_streaming.py --rows 100000 1000000 5000000 --out runs/bench/stream.json
    python benchmarks/pretrain_streaming.py --rows 20000 100000 --steps 10 --resume-steps 5 \\
        --pipeline-batches 20 --out x.json          # a quick look

For each size N it writes a synthetic data root of N unlabeled rows at the preset's widths
(inat2018: 2048 image features), then runs, each in its own subprocess so that each peak RSS
is its own:

* **pipeline**: the pre-training stream alone, exactly as `csp-tf pretrain` builds it
  (``DataRoot.open`` → ``stage_inputs``, streamed: ``data.pretrain_in_memory_mb=0``), drained
  for ``--pipeline-batches`` batches (0: the whole epoch); rows/s after a warm-up, peak RSS.
* **pretrain**: ``csp-tf pretrain --preset PRESET --max-steps S`` on the root, then the same
  command again with ``--max-steps R``, which resumes from the checkpoint mid-epoch (as any
  paused run does); the step rate from the TensorBoard step scalars' wall times, the global
  step after each run, peak RSS of each run. ``--in-memory-baseline`` repeats this for the
  first size with its pool read into memory (the default below ``data.pretrain_in_memory_mb``):
  the step rate without the stream, in the same run.

Both children sample their resident memory every 2 s (``rss_mb_samples``): a flat trace over
a whole epoch (``--pipeline-batches 0``) is what bounded memory looks like.

The data root is written directly with the ingest's own tf.Example encoder
(``csp_tf.data.schema.encode_example``) into gzip TFRecords plus a ``metadata.json`` of the
ingest's format, not through Beam: the Beam ingest is measured by ``benchmarks/ingest.py``.
Only ``--distinct-rows`` rows are generated (random normal features, standard-normal
statistics recorded); a larger root repeats those shards as hard links, so N rows at 2048
floats (8 KB a row, 41 GB at 5M rows) take the disk space of the distinct rows only, and
the reads of the repeats come from the page cache: this measures the process's memory and the
CPU side of the stream, not the disk. The MB/s the stream consumed is reported, to set beside a
disk. Nothing here makes the whole root resident: every byte goes through tf.data's bounded
buffers, which is what the RSS across sizes shows.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARD_ROWS = 10_000
STREAMED = "data.pretrain_in_memory_mb=0"  # stream whatever the size, as pools past memory do


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024.0


class RssTrace:
    """Samples this process's resident memory every ``every_s`` seconds in a thread: a flat
    trace over a whole epoch is what bounded memory looks like."""

    def __init__(self, every_s: float = 2.0):
        import threading

        self.samples: List[List[float]] = []
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.samples.append([round(time.perf_counter() - self._t0, 1), round(_rss_mb(), 1)])

    def stop(self) -> Dict[str, Any]:
        self._stop.set()
        self._thread.join()
        late = [mb for _, mb in self.samples[len(self.samples) // 2:]]
        early = [mb for _, mb in self.samples[:len(self.samples) // 2]]
        return {"rss_mb_samples": self.samples,
                "rss_mb_max_first_half": max(early) if early else None,
                "rss_mb_max_second_half": max(late) if late else None}


def _distinct_shards(work: str, rows: int, feature_dim: int, seed: int = 0) -> List[str]:
    """``rows`` distinct records in shards of SHARD_ROWS under ``work/distinct`` (reused when
    present with the same shape)."""
    import tensorflow as tf

    from csp_tf.data import schema

    folder = os.path.join(work, f"distinct-{rows}x{feature_dim}")
    done = os.path.join(folder, "DONE")
    paths = [os.path.join(folder, f"part-{i:05d}.tfrecord.gz") for i in range(-(-rows // SHARD_ROWS))]
    if os.path.exists(done):
        return paths
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)
    t0 = time.perf_counter()
    for shard, path in enumerate(paths):
        start = shard * SHARD_ROWS
        n = min(SHARD_ROWS, rows - start)
        feats = rng.standard_normal((n, feature_dim), dtype=np.float32)
        lonlat = rng.random((n, 2))
        with tf.io.TFRecordWriter(path, options) as w:
            for i in range(n):
                w.write(schema.encode_example({
                    "id": f"s{start + i:010d}", "lon": float(lonlat[i, 0] * 360.0 - 180.0),
                    "lat": float(np.degrees(np.arcsin(2.0 * lonlat[i, 1] - 1.0))),
                    "image_features": feats[i]}))
        print(f"  distinct shard {shard + 1}/{len(paths)} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    open(done, "w").close()
    return paths


def make_root(work: str, rows: int, feature_dim: int, distinct_rows: int) -> Dict[str, Any]:
    """A data root of ``rows`` unlabeled rows (split ``pretrain``): the distinct shards, then
    hard links to them; metadata.json in the ingest's format."""
    from csp_tf.data import schema

    if rows % SHARD_ROWS or distinct_rows % SHARD_ROWS:
        raise SystemExit(f"--rows and --distinct-rows must be multiples of {SHARD_ROWS}")
    distinct = _distinct_shards(work, min(rows, distinct_rows), feature_dim)
    root = os.path.join(work, f"root-{rows}x{feature_dim}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "pretrain"))
    files, sizes = [], []
    for i in range(rows // SHARD_ROWS):
        rel = f"pretrain/part-{i:05d}-of-{rows // SHARD_ROWS:05d}.tfrecord.gz"
        os.link(distinct[i % len(distinct)], os.path.join(root, rel))
        files.append(rel)
        sizes.append(os.path.getsize(os.path.join(root, rel)))
    empty = {"rows": 0, "files": [], "bytes": []}
    meta = {"schema_version": schema.SCHEMA_VERSION, "feature_dim": feature_dim,
            "num_classes": 2, "class_names": ["a", "b"],
            "splits": {"pretrain": {"rows": rows, "files": files, "bytes": sizes},
                       "train": empty, "val": empty, "test": empty},
            "train_class_counts": [0, 0], "split_fractions": [0.7, 0.15, 0.15],
            "feature_stats": {"count": rows, "mean": [0.0] * feature_dim,
                              "std": [1.0] * feature_dim, "std_floor": 1e-6}}
    with open(os.path.join(root, "metadata.json"), "w") as f:
        json.dump(meta, f)
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("a\nb\n")
    return {"root": root, "rows": rows, "files": len(files), "logical_bytes": int(sum(sizes)),
            "distinct_rows": min(rows, distinct_rows),
            "distinct_bytes": int(sum(os.path.getsize(p) for p in distinct))}


# ----- children ----------------------------------------------------------------------------------
def child_pipeline(root: str, preset: str, batches: int, warmup: int = 3) -> Dict[str, Any]:
    """The pre-training stream of ``csp-tf pretrain`` alone: rows/s and peak RSS."""
    from csp_tf.configs import get_preset
    from csp_tf.train.data_root import DataRoot, stage_inputs

    trace = RssTrace()
    data = DataRoot.open(root)
    cfg = data.configure(get_preset(preset).override({"data.pretrain_in_memory_mb": 0}))
    stage_input = stage_inputs(cfg, data, "pretrain")["stage_input"]
    ds = stage_input.dataset_fn(0)
    rss_after_warmup, rows, seen, t0 = 0.0, 0, 0, 0.0
    for batch in ds:
        seen += 1
        if seen == warmup:
            rss_after_warmup, t0 = _peak_rss_mb(), time.perf_counter()
        elif seen > warmup:
            rows += int(batch["lon_lat"].shape[0])
        if batches and seen >= batches + warmup:
            break
    seconds = time.perf_counter() - t0
    return {**trace.stop(), "batches": seen, "steps_per_epoch": stage_input.steps_per_epoch,
            "batch_size": cfg.pretrain.batch_size, "rows_timed": rows,
            "rows_per_s": round(rows / seconds, 1), "seconds": round(seconds, 2),
            "peak_rss_mb_after_warmup": round(rss_after_warmup, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}


def child_cli(argv: Sequence[str]) -> Dict[str, Any]:
    """``csp-tf ARGV`` in this process; its exit status and peak RSS."""
    from csp_cli import main

    trace = RssTrace()
    t0 = time.perf_counter()
    rc = main(list(argv))
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1), **trace.stop()}


def _run_child(args: List[str], timeout: float) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True,
                          text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args[:2]} failed (exit {proc.returncode}):\n"
                           + "\n".join((proc.stderr or proc.stdout).splitlines()[-15:]))
    return json.loads(lines[-1][len("RESULT "):])


def step_rates(log_dir: str) -> Dict[str, Any]:
    """Steps/s between the logged step scalars (TensorBoard event wall times), per run."""
    import tensorflow as tf

    points = []
    for path in sorted(glob.glob(os.path.join(log_dir, "pretrain", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            if any(v.tag == "step/loss" for v in event.summary.value):
                points.append((event.wall_time, event.step, path))
    runs = []
    for path in sorted({p for _, _, p in points}):
        mine = sorted((s, t) for t, s, p in points if p == path)
        if len(mine) >= 3:  # the first logged step carries the tracing: start after it
            (s0, t0), (s1, t1) = mine[1], mine[-1]
            runs.append({"first_step": mine[0][0], "last_logged_step": s1,
                         "steps_per_s": round((s1 - s0) / (t1 - t0), 3)})
    return {"runs": runs}


def _pretrain(work: str, name: str, root: str, preset: str, pool_mb: int, steps: int,
              resume_steps: int, log_every: int, timeout: float) -> Dict[str, Any]:
    """Two `csp-tf pretrain` runs in one output dir, the second resuming the first."""
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    cli = ["pretrain", "--data-root", root, "--out", out, "--preset", preset,
           "--set", f"data.pretrain_in_memory_mb={pool_mb}",
           "--set", f"runtime.log_every_steps={log_every}", "--set", "runtime.progress=false"]
    first = _run_child(["--child", "cli", *cli, "--max-steps", str(steps)], timeout)
    resumed = _run_child(["--child", "cli", *cli, "--max-steps", str(resume_steps)], timeout)
    rates = step_rates(os.path.join(out, "logs"))
    shutil.rmtree(out, ignore_errors=True)
    result = {"preset": preset, "pretrain_in_memory_mb": pool_mb, "max_steps": steps,
              "resume_max_steps": resume_steps, "first": first, "resumed": resumed, **rates}
    if rates["runs"]:
        result["steps_per_s"] = rates["runs"][0]["steps_per_s"]
    print(f"  pretrain (pretrain_in_memory_mb={pool_mb}): {first['seconds']} s for {steps} steps "
          f"(peak RSS {first['peak_rss_mb']:,.0f} MB), resumed {resume_steps} more in "
          f"{resumed['seconds']} s (peak RSS {resumed['peak_rss_mb']:,.0f} MB); step rates "
          f"{rates['runs']}", flush=True)
    return result


def measure(work: str, rows: int, feature_dim: int, distinct_rows: int, preset: str, steps: int,
            resume_steps: int, pipeline_batches: int, log_every: int, timeout: float,
            in_memory_baseline: bool = False) -> Dict[str, Any]:
    t0 = time.perf_counter()
    root = make_root(work, rows, feature_dim, distinct_rows)
    root["make_s"] = round(time.perf_counter() - t0, 1)
    print(f"rows {rows:,}: root {root['logical_bytes'] / 1e9:.1f} GB in {root['files']} files "
          f"({root['distinct_bytes'] / 1e9:.2f} GB distinct), made in {root['make_s']} s", flush=True)
    result: Dict[str, Any] = {"rows": rows, "root": {k: v for k, v in root.items() if k != "root"}}
    pipe = _run_child(["--child", "pipeline", root["root"], preset, str(pipeline_batches)], timeout)
    pipe["mb_per_s"] = round(pipe["rows_per_s"] * root["logical_bytes"] / rows / 1e6, 1)
    result["pipeline"] = pipe
    print(f"  pipeline: {pipe['rows_per_s']:,.0f} rows/s ({pipe['mb_per_s']} MB/s) over "
          f"{pipe['rows_timed']:,} rows, peak RSS {pipe['peak_rss_mb']:,.0f} MB", flush=True)
    if steps <= 0:
        shutil.rmtree(root["root"], ignore_errors=True)
        return result
    result["pretrain"] = _pretrain(work, f"pretrain-{rows}", root["root"], preset, 0, steps,
                                   resume_steps, log_every, timeout)
    if in_memory_baseline:  # the same rows read into memory: the step without the stream
        result["pretrain_in_memory"] = _pretrain(work, f"pretrain-{rows}-in-memory", root["root"],
                                                 preset, 1 << 20, steps, resume_steps, log_every,
                                                 timeout)
    shutil.rmtree(root["root"], ignore_errors=True)  # links only: the distinct shards stay
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        kind, rest = argv[1], argv[2:]
        out = (child_pipeline(rest[0], rest[1], int(rest[2])) if kind == "pipeline" else child_cli(rest))
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--feature-dim", type=int, default=0, help="default: the preset's (inat2018: 2048)")
    p.add_argument("--distinct-rows", type=int, default=100_000,
                   help="rows generated; larger roots repeat them as hard links (default 100000)")
    p.add_argument("--preset", default="inat2018")
    p.add_argument("--steps", type=int, default=60,
                   help="steps of the first pretrain run (0: measure the stream only)")
    p.add_argument("--resume-steps", type=int, default=20, help="steps of the resumed run")
    p.add_argument("--pipeline-batches", type=int, default=300, help="0: the whole epoch")
    p.add_argument("--in-memory-baseline", action="store_true",
                   help="also pre-train the first size with its pool read into memory (the "
                        "step rate without streaming; needs the pool to fit in RAM)")
    p.add_argument("--log-every", type=int, default=5, help="runtime.log_every_steps (step rate)")
    p.add_argument("--work", default=os.path.join("runs", "bench", "pretrain_streaming"))
    p.add_argument("--keep", action="store_true", help="keep the distinct shards")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess")
    p.add_argument("--out", required=True, help="JSON report")
    a = p.parse_args(argv)
    from csp_tf.presets import PAPER_SHAPES

    feature_dim = a.feature_dim or PAPER_SHAPES.get(a.preset, (2048,))[0]
    report: Dict[str, Any] = {
        "preset": a.preset, "feature_dim": feature_dim, "distinct_rows": a.distinct_rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
        "sizes": []}
    try:
        for rows in a.rows:
            report["sizes"].append(measure(a.work, rows, feature_dim, a.distinct_rows, a.preset,
                                           a.steps, a.resume_steps, a.pipeline_batches,
                                           a.log_every, a.timeout,
                                           a.in_memory_baseline and rows == a.rows[0]))
            report["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "w") as f:  # after every size: a long run keeps what it measured
                json.dump(report, f, indent=2)
    finally:
        if not a.keep:
            for folder in glob.glob(os.path.join(a.work, "distinct-*")):
                shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
