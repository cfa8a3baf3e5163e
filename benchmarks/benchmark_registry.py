"""What ``benchmarks/run_all.py`` runs and reports: one ``Benchmark`` per script, with the
commands that make it write its JSON and the ``Row``s (dotted JSON paths) the report shows.

Add a benchmark here: its script, a command builder ``(json_path, work_dir, quick) -> argvs``,
the rows to report and the ratios (side-by-side measurements) to put in the summary.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Callable, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


@dataclasses.dataclass(frozen=True)
class Row:
    """One reported quantity: a label, a dotted path into the JSON (list items by index), a
    format (``{:.1f}``-style, or ``None`` for str()) and an optional note."""

    label: str
    path: str
    fmt: Optional[str] = "{:.2f}"
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A benchmark: how to run it (commands that end by writing ``json_path``) and what to report."""

    name: str
    title: str
    script: str  # the file that must exist (relative to the repo)
    commands: Callable[[str, str, bool], List[List[str]]]  # (json_path, work_dir, quick) -> argvs
    rows: Tuple[Row, ...]
    ratios: Tuple[Row, ...] = ()
    note: str = ""


def _train_step_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    extra = ["--steps", "5"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "train_step.py"), "--out", json_path, *extra]]


def _ingest_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    extra = ["--size", "small"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "ingest.py"), "--out", json_path, *extra]]


def _ingest_limit_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    rows = ["--rows", "100000"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "ingest_limit.py"), "--out", json_path,
             "--work-dir", os.path.join(work, "ingest_limit"), *rows]]


def _serving_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    extra = ["--duration", "2"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "serving_load.py"), "--out", json_path, *extra]]


def _place_memory_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    extra = ["--sizes", "20000", "--batches", "1,64"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "place_memory.py"), "--out", json_path, *extra]]


def _place_memory_rows(layout: str, n: str, b: str) -> Tuple[Row, ...]:
    at = f"cases.{layout}_{n.replace(' ', '')}_{b}"
    return (Row(f"{layout}, N = {n} places, batch {b}: search (ms)", f"{at}.search_ms", "{:.2f}"),
            Row("  scan of every place, same queries and K (ms)", f"{at}.scan_ms", "{:.2f}"),
            Row("  BallTree, same queries and K (ms)", f"{at}.balltree_ms", "{:.2f}"),
            Row("  queries the caps settled (fraction)", f"{at}.proven_fraction", "{:.3f}"),
            Row("  P(y|loc) with the memory (ms)", f"{at}.model_ms", "{:.2f}"),
            Row("  P(y|loc) without the memory (ms)", f"{at}.model_network_ms", "{:.2f}"),
            Row("  largest distance difference to the BallTree (km)",
                f"{at}.max_distance_diff_km", "{:.1e}"))


def _place_memory_ratios(layout: str, n: str, b: str) -> Tuple[Row, ...]:
    at = f"cases.{layout}_{n.replace(' ', '')}_{b}"
    case = f"{layout}, N = {n}, batch {b}"
    return (Row(f"{case}: scan time / search time", f"{at}.scan_vs_search",
                note="the caps' speed-up; same answers"),
            Row(f"{case}: BallTree time / search time", f"{at}.search_vs_balltree"),
            Row(f"{case}: search scores/s / one-pass scan scores/s", f"{at}.fraction_of_scan_limit",
                note="above 1.0 = faster than reading all B·N scores once"),
            Row(f"{case}: the memory's share of P(y|loc) time", f"{at}.memory_share_of_model"))


_MEMORY_CASES = [(layout, n, b) for layout in ("uniform", "clustered")
                 for n in ("20 000", "100 000") for b in ("1", "64", "4096")]


def _tflite_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    extra = ["--cases", "places:194", "--rounds", "2"] if quick else []
    return [[PY, os.path.join(REPO, "benchmarks", "tflite_export.py"), "--out", json_path, *extra]]


def _tflite_rows(case: str) -> Tuple[Row, ...]:
    at = f"cases.{case}"
    rows = [Row(f"{case}: SavedModel size, pb + variables (bytes)", f"{at}.savedmodel.bytes", "{:d}"),
            Row(f"{case}: SavedModel location_prior, batch 1 (µs/point)",
                f"{at}.savedmodel.b1_us_per_point", "{:.0f}"),
            Row(f"{case}: SavedModel location_prior, batch 256 (µs/point)",
                f"{at}.savedmodel.b256_us_per_point", "{:.2f}")]
    for p in ("fp32", "int8", "fp16"):
        rows += [Row(f"  TFLite {p}: size (bytes)", f"{at}.{p}.bytes", "{:d}"),
                 Row(f"  TFLite {p}: batch 1 (µs/point)", f"{at}.{p}.b1_us_per_point", "{:.0f}"),
                 Row(f"  TFLite {p}: batch 256 (µs/point)", f"{at}.{p}.b256_us_per_point", "{:.2f}"),
                 Row(f"  TFLite {p}: top-1 agreement with the SavedModel", f"{at}.{p}.top1_agreement",
                     "{:.4f}"),
                 Row(f"  TFLite {p}: max abs diff of P(y|loc)", f"{at}.{p}.max_abs_diff", "{:.1e}")]
    return tuple(rows)


def _tflite_ratios(case: str) -> Tuple[Row, ...]:
    at = f"cases.{case}"
    return tuple(r for p in ("fp32", "int8", "fp16") for r in (
        Row(f"{case}: TFLite {p} size / SavedModel size", f"{at}.{p}.bytes_vs_savedmodel"),
        Row(f"{case}: SavedModel / TFLite {p} time per point, batch 1",
            f"{at}.{p}.b1_speedup_vs_savedmodel"),
        Row(f"{case}: SavedModel / TFLite {p} time per point, batch 256",
            f"{at}.{p}.b256_speedup_vs_savedmodel")))


def _tfx_cmds(json_path: str, work: str, quick: bool) -> List[List[str]]:
    world = os.path.join(work, "tfx_world")
    gen = [PY, "-m", "csp_tf.data.cli", "generate", "--out", world, "--size", "small", "--ingest",
           "--in-process"]
    run = [PY, "-m", "csp_cli", "pipeline", "run", "--data-root", os.path.join(world, "data"),
           "--pipeline-root", os.path.join(work, "tfx_root"), "--serving-dir",
           os.path.join(work, "tfx_serving"), "--preset", "demo", "--no-cache", "--no-report",
           "--json", json_path]
    if quick:
        run += ["--set", "pretrain.epochs=1", "--set", "finetune.epochs=2"]
    return [gen, run]


BENCHMARKS: Tuple[Benchmark, ...] = (
    Benchmark(
        "train_step", "Pre-training step: fp32/bf16 x XLA on/off vs the GEMM peak (benchmarks/train_step.py)",
        "benchmarks/train_step.py", _train_step_cmds,
        rows=(Row("device", "setup.device", None), Row("batch", "setup.batch", "{:d}"),
              Row("load average (1 min) at start", "setup.load_avg_1m_at_start", "{:.2f}"),
              Row("load average (1 min) at end", "setup.load_avg_1m_at_end", "{:.2f}"),
              Row("step FLOPs (GFLOP, forward + backward matmuls)", "step_gflop", "{:.2f}"),
              Row("fp32 GEMM peak (GFLOP/s, best of numpy / tf.linalg.matmul, 2048^2 and the step's shapes)",
                  "gemm_peak.peak_gflops", "{:.1f}"),
              Row("  numpy 2048^2", "gemm_peak.numpy_2048", "{:.1f}"),
              Row("  tf.linalg.matmul 2048^2", "gemm_peak.tf_2048", "{:.1f}"),
              Row("  numpy, the step's shapes", "gemm_peak.numpy_step_shapes", "{:.1f}"),
              Row("  tf.linalg.matmul, the step's shapes", "gemm_peak.tf_step_shapes", "{:.1f}"),
              Row("  bf16 tf.linalg.matmul 2048^2", "gemm_peak.tf_bf16_2048", "{:.1f}"),
              # fp32 rows read "xla_off"/"xla_on": train_step.py writes them as aliases of fp32_xla_*.
              Row("step, fp32, XLA off (ms, best round)", "xla_off.step_ms", "{:.1f}"),
              Row("examples/s, fp32, XLA off", "xla_off.examples_per_s", "{:.0f}"),
              Row("GFLOP/s, fp32, XLA off", "xla_off.step_gflops", "{:.1f}"),
              Row("fraction of the fp32 GEMM peak, fp32, XLA off", "xla_off.fraction_of_fp32_gemm_peak", "{:.2f}"),
              Row("step, fp32, XLA on (ms, best round)", "xla_on.step_ms", "{:.1f}"),
              Row("examples/s, fp32, XLA on", "xla_on.examples_per_s", "{:.0f}"),
              Row("GFLOP/s, fp32, XLA on", "xla_on.step_gflops", "{:.1f}"),
              Row("fraction of the fp32 GEMM peak, fp32, XLA on", "xla_on.fraction_of_fp32_gemm_peak", "{:.2f}"),
              Row("step, bf16, XLA off (ms, best round)", "bf16_xla_off.step_ms", "{:.1f}"),
              Row("examples/s, bf16, XLA off", "bf16_xla_off.examples_per_s", "{:.0f}"),
              Row("GFLOP/s, bf16, XLA off", "bf16_xla_off.step_gflops", "{:.1f}"),
              Row("fraction of the fp32 GEMM peak, bf16, XLA off", "bf16_xla_off.fraction_of_fp32_gemm_peak", "{:.2f}"),
              Row("step, bf16, XLA on (ms, best round)", "bf16_xla_on.step_ms", "{:.1f}"),
              Row("examples/s, bf16, XLA on", "bf16_xla_on.examples_per_s", "{:.0f}"),
              Row("GFLOP/s, bf16, XLA on", "bf16_xla_on.step_gflops", "{:.1f}"),
              Row("fraction of the fp32 GEMM peak, bf16, XLA on", "bf16_xla_on.fraction_of_fp32_gemm_peak", "{:.2f}"),
              Row("step, fp32, XLA off, one encoder call per pass (the earlier structure) (ms, best round)", "fp32_xla_off_per_pass.step_ms", "{:.1f}"),
              Row("examples/s, fp32, XLA off, one encoder call per pass (the earlier structure)", "fp32_xla_off_per_pass.examples_per_s", "{:.0f}"),
              Row("GFLOP/s, fp32, XLA off, one encoder call per pass (the earlier structure)", "fp32_xla_off_per_pass.step_gflops", "{:.1f}"),
              Row("fraction of the fp32 GEMM peak, fp32, XLA off, one encoder call per pass (the earlier structure)", "fp32_xla_off_per_pass.fraction_of_fp32_gemm_peak", "{:.2f}"),
              Row("reference PyTorch step (ms; EXTERNAL: the authors' PyTorch code, timed outside csp-tf)",
                  "reference_external.step_ms", None),
              Row("peak RSS (MB)", "peak_rss_mb", "{:.0f}")),
        ratios=(Row("XLA speed-up (step time off / on)", "xla_speedup"),
                Row("merged encoder call speed-up, XLA off (per-pass / merged)", "merged_speedup_xla_off"),
                Row("matmul-chain time / step time, XLA off", "xla_off.ratio_to_matmul_chain",
                    note="1.0 = the step costs no more than its matmuls"),
                Row("matmul-chain time / step time, XLA on", "xla_on.ratio_to_matmul_chain"))),
    Benchmark(
        "ingest", "Beam ingest and tf.data parse rate (benchmarks/ingest.py)",
        "benchmarks/ingest.py", _ingest_cmds,
        rows=(Row("world rows", "world.rows", "{:d}"),
              Row("ingest rows/s (pipeline, DirectRunner multi_processing)",
                  "ingest.multi_processing.rows_per_s", "{:.0f}"),
              Row("ingest wall time (s)", "ingest.multi_processing.wall_s", "{:.1f}"),
              Row("ingest rows/s (wall)", "ingest.multi_processing.rows_per_s_wall", "{:.0f}"),
              Row("tf.data parse rate (examples/s, the world's feature width)", "parse.examples_per_s", "{:.0f}"),
              Row("feature width of those records", "parse.feature_dim", "{:d}"),
              Row("tf.data parse rate (examples/s, the pre-training step's width)",
                  "parse_step_width.examples_per_s", "{:.0f}"),
              Row("feature width of those records", "parse_step_width.feature_dim", "{:d}")),
        # No "pipeline / wall" ratio: both figures include Beam's start-up, so it could not show it.
        ),
    Benchmark(
        "ingest_limit", "Ingest vs its limit: the same work without Beam (benchmarks/ingest_limit.py)",
        "benchmarks/ingest_limit.py", _ingest_limit_cmds,
        rows=(Row("manifest rows", "manifest.rows", "{:d}"),
              Row("manifest size (MB, JSONL, 128 features a row)", "manifest.mb", "{:.0f}"),
              Row("limit: rows/s (one process, no Beam)", "limit.rows_per_s", "{:.0f}"),
              Row("limit: MB/s", "limit.mb_per_s", "{:.2f}"),
              Row("ingest: rows/s (DirectRunner defaults, wall)", "ingest.rows_per_s", "{:.0f}"),
              Row("ingest: MB/s", "ingest.mb_per_s", "{:.2f}"),
              Row("same shards, dead letter and metadata", "same_output", None)),
        ratios=(Row("ingest rows/s / limit rows/s", "ratio_ingest_over_limit",
                    note="goal: at least 0.5 on 2 cores"),),
        note="`--quick` runs 10^5 rows instead of 10^6."),
    Benchmark(
        "serving_load", "Serving: gRPC vs in-process (benchmarks/serving_load.py)",
        "benchmarks/serving_load.py", _serving_cmds,
        rows=(Row("model", "model.label", None), Row("server", "server", None),
              Row("signature", "signature", None), Row("batch size", "batch_size", "{:d}"),
              Row("in-process p50 (ms)", "in_process.p50_ms", "{:.3f}"),
              Row("gRPC p50, concurrency 1 (ms)", "grpc.0.p50_ms", "{:.3f}"),
              Row("gRPC p99, concurrency 1 (ms)", "grpc.0.p99_ms", "{:.3f}"),
              Row("gRPC floor, empty servicer p50 (ms)", "grpc_floor_empty_servicer.p50_ms", "{:.3f}"),
              Row("errors", "total_errors", "{:d}")),
        ratios=(Row("gRPC p50 at concurrency 1 / in-process p50", "ratio_grpc_p50_over_in_process"),
                Row("target for that ratio (at most)", "target_ratio"),
                Row("throughput at the highest / the lowest concurrency",
                    "@ratio:grpc.-1.throughput_rps/grpc.0.throughput_rps")),
        note="Per-concurrency results are listed from the report's `grpc` levels."),
    Benchmark(
        "place_memory", "Place memory: exact in-graph neighbour search, pruned by caps (benchmarks/place_memory.py)",
        "benchmarks/place_memory.py", _place_memory_cmds,
        rows=tuple(r for case in _MEMORY_CASES for r in _place_memory_rows(*case)),
        ratios=tuple(r for case in _MEMORY_CASES for r in _place_memory_ratios(*case)),
        note="K = 50 neighbours, float64; `--quick` runs only N = 20 000 at batches 1 and 64 (both layouts)."),
    Benchmark(
        "tflite_export", "On-device export: SavedModel vs TFLite fp32 / int8 / fp16, location_prior "
        "on CPU (benchmarks/tflite_export.py)",
        "benchmarks/tflite_export.py", _tflite_cmds,
        rows=_tflite_rows("places_194") + _tflite_rows("inat2018_8142"),
        ratios=_tflite_ratios("places_194") + _tflite_ratios("inat2018_8142"),
        note="One thread for both runtimes; `--quick` runs only places (194 classes), 2 rounds."),
    Benchmark(
        "tfx_pipeline", "TFX demo pipeline wall time (csp-tf pipeline run, LocalDagRunner)",
        "tfx_pipeline/local_runner.py", _tfx_cmds,
        rows=(Row("pipeline wall time reported by run_local (s)", "wall_seconds", "{:.1f}"),
              Row("blessed", "blessed", None), Row("pushed", "pushed", None),
              Row("subprocess wall time measured by run_all (s)", "_run_all.seconds", "{:.1f}")),
        ratios=(Row("run_local wall / subprocess wall", "@ratio:wall_seconds/_run_all.seconds",
                    note="the rest is interpreter start, imports and MLMD set-up"),),
        note="Per-component seconds are listed from the run summary's `components`."),
)
