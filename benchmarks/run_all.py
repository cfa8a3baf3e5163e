"""Runs every csp-tf benchmark as a subprocess and renders their JSON into one markdown report
(default ``runs/benchmarks/report.md``; docs/benchmarks.md quotes its figures with the commands).

    python benchmarks/run_all.py                       # all five, full size (tens of minutes)
    python benchmarks/run_all.py --quick               # smaller settings (a few minutes)
    python benchmarks/run_all.py --only train_step,serving_load
    python benchmarks/run_all.py --from-json runs/benchmarks   # re-render without running

Benchmarks (each writes its own JSON, collected into ``--json-dir``):

* ``train_step``   — ``benchmarks/train_step.py --out J``: pre-training step, XLA on vs off,
  against a matmul chain of the same shapes.
* ``ingest``       — ``benchmarks/ingest.py --out J``: Beam ingest rows/s, tf.data parse rate.
* ``serving_load`` — ``benchmarks/serving_load.py --out J``: gRPC vs in-process latency.
* ``place_memory`` — ``benchmarks/place_memory.py --out J``: the place memory's exact
  neighbour search vs a one-pass scan of its scores and a BallTree, and its share of P(y|loc).
* ``tfx_pipeline`` — generates the small demo world, then times
  ``csp-tf pipeline run ... --json J`` (the TFX demo pipeline, LocalDagRunner).

Every number in the report is read from a JSON written in this run (or the JSON directory
given to ``--from-json``). A value a JSON lacks is shown as ``n/a`` and listed under "Missing
values"; a benchmark that failed or timed out is reported as such with the tail of its log.
Nothing is filled in or estimated. The list of benchmarks and their report rows is
``benchmarks/benchmark_registry.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the registry beside this script
from benchmark_registry import BENCHMARKS, PY, REPO, Benchmark, Row  # noqa: E402  (re-exported)

NA = "n/a"


def lookup(data: Any, path: str) -> Any:
    """Value at a dotted path (``a.b.0.c``); raises KeyError naming the missing part."""
    node = data
    for part in path.split("."):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


def value_of(data: Any, row: Row) -> Tuple[str, Optional[str]]:
    """(formatted value, missing path or None). ``@ratio:a/b`` divides two values of the JSON."""
    try:
        if row.path.startswith("@ratio:"):
            num_path, den_path = row.path[len("@ratio:"):].split("/")
            num, den = float(lookup(data, num_path)), float(lookup(data, den_path))
            if den == 0 or not math.isfinite(num) or not math.isfinite(den):
                return NA, f"{row.path} (not a finite ratio)"
            return f"{num / den:.2f}", None
        value = lookup(data, row.path)
    except KeyError as exc:
        return NA, str(exc.args[0])
    if value is None:
        return NA, f"{row.path} (null)"
    if row.fmt is None:
        return str(value), None
    try:
        if isinstance(value, float) and not math.isfinite(value):
            return NA, f"{row.path} (not finite)"
        if "d}" in row.fmt:
            value = int(value)
        return row.fmt.format(value), None
    except (TypeError, ValueError):
        return str(value), None


def run_benchmark(b: Benchmark, json_dir: str, work_dir: str, quick: bool,
                  timeout_s: float) -> Dict[str, Any]:
    """Runs ``b``'s commands; returns {status, seconds, log, json, reason}."""
    json_path = os.path.join(json_dir, f"{b.name}.json")
    log_path = os.path.join(json_dir, f"{b.name}.log")
    if not os.path.exists(os.path.join(REPO, b.script)):
        return {"status": "missing", "reason": f"{b.script} does not exist", "log": None,
                "json": None, "seconds": None}
    if os.path.exists(json_path):
        os.remove(json_path)  # never report a stale JSON from an earlier run
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    t0 = time.time()
    with open(log_path, "w") as log:
        for argv in b.commands(json_path, work_dir, quick):
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            left = timeout_s - (time.time() - t0)
            try:
                rc = subprocess.run(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=max(left, 1)).returncode
            except subprocess.TimeoutExpired:
                return {"status": "timeout", "reason": f"timed out after {timeout_s:.0f} s",
                        "log": log_path, "json": None, "seconds": time.time() - t0}
            if rc != 0:
                return {"status": "failed", "reason": f"`{' '.join(argv[1:3])} ...` exited {rc}",
                        "log": log_path, "json": None, "seconds": time.time() - t0}
    seconds = time.time() - t0
    if not os.path.exists(json_path):
        return {"status": "failed", "reason": f"no JSON written to {json_path}", "log": log_path,
                "json": None, "seconds": seconds}
    _stamp(json_path, seconds)
    return {"status": "ok", "reason": "", "log": log_path, "json": json_path, "seconds": seconds}


def _stamp(json_path: str, seconds: float) -> None:
    """Adds ``_run_all.seconds`` (the subprocess wall time measured here) to the JSON."""
    with open(json_path) as f:
        data = json.load(f)
    if isinstance(data, dict):
        data["_run_all"] = {"seconds": round(seconds, 2)}
        with open(json_path, "w") as f:
            json.dump(data, f, indent=2)


def _log_tail(path: Optional[str], lines: int = 8) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        tail = f.read().splitlines()[-lines:]
    return "\n".join(tail)


def render(results: Dict[str, Dict[str, Any]], benchmarks: Sequence[Benchmark], *,
           quick: bool, source: str) -> str:
    """The markdown report."""
    out = ["# csp-tf benchmarks", "",
           f"Generated by `python benchmarks/run_all.py{' --quick' if quick else ''}` on "
           f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} ({source}).",
           f"Machine: {os.cpu_count()} CPU cores, {platform.platform()}, Python "
           f"{platform.python_version()}.", "",
           "Every number below was read from the JSON its benchmark wrote in this run; ratios "
           "divide two numbers of the same JSON (one run, one machine). A value the JSON does "
           "not contain is shown as **n/a** and listed under *Missing values*; nothing is "
           "estimated.", "",
           "| benchmark | status | wall time (s) |", "|---|---|---|"]
    missing: List[str] = []
    sections: List[str] = []
    for b in benchmarks:
        r = results.get(b.name, {"status": "not run", "reason": "not selected", "seconds": None})
        secs = f"{r['seconds']:.0f}" if r.get("seconds") is not None else NA
        status = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        out.append(f"| {b.name} | {status} | {secs} |")
        sections += ["", f"## {b.title}", ""]
        if r["status"] != "ok":
            sections.append(f"Not measured ({status}).")
            tail = _log_tail(r.get("log"))
            if tail:
                sections += ["", "Last lines of the log:", "", "```", tail, "```"]
            continue
        with open(r["json"]) as f:
            data = json.load(f)
        for heading, rows in (("Measured", b.rows), ("Ratios (same run)", b.ratios)):
            if not rows:
                continue
            sections += [f"**{heading}**", "", "| quantity | value |", "|---|---|"]
            for row in rows:
                text, miss = value_of(data, row)
                if miss:
                    missing.append(f"`{b.name}`: `{miss}` is not in its JSON")
                label = row.label + (f" ({row.note})" if row.note else "")
                sections.append(f"| {label} | {text} |")
            sections.append("")
        if b.name == "tfx_pipeline":
            sections += _component_table(data)
        if b.name == "serving_load":
            sections += _levels_table(data)
        if b.note:
            sections.append(b.note)
    out += sections
    out += _cross_ratios(results)
    out += ["", "## Reading these numbers", "",
            "* **No GPU here.** This project's sessions were not lent a GPU machine, so XLA and "
            "mixed precision on GPU are unmeasured; run `python benchmarks/train_step.py --out "
            "gpu.json` on a GPU host (BUILD.md §2).",
            "* **XLA on CPU is load-sensitive.** On this shared 2-core machine the XLA speed-up of "
            "the pre-training step has ranged from below 1x to about 1.7x between runs made under "
            "different background loads; `runtime.jit_compile=auto` therefore enables XLA only on "
            "GPU. Each run's own figure is the one in the table above.",
            "* **Serving** is measured against the *development* server (Python gRPC) with the "
            "stand-in model: the empty-servicer floor alone is of the order of the whole "
            "in-process call, so the 1.5x target is out of reach for any Python server; the real "
            "`tensorflow/serving:2.16.1` binary cannot be installed here (BUILD.md §5)."]
    out += ["", "## Missing values", ""]
    out += [f"* {m}" for m in missing] if missing else ["None: every expected key was present."]
    return "\n".join(out) + "\n"


def _cross_ratios(results: Dict[str, Dict[str, Any]]) -> List[str]:
    """Ratios between two benchmarks of this run: can tf.data feed the pre-training step?"""
    def load(name: str) -> Optional[Dict[str, Any]]:
        r = results.get(name, {})
        if r.get("status") != "ok":
            return None
        with open(r["json"]) as f:
            return json.load(f)

    step, ingest = load("train_step"), load("ingest")
    lines = ["", "## tf.data parse rate vs the pre-training step (same run)", ""]
    if step is None or ingest is None:
        return lines + ["Not measured: needs both train_step and ingest in this run."]
    # The same records as the step consumes: parse rate at the step's feature width.
    try:
        parse = lookup(ingest, "parse_step_width.examples_per_s")
        width = lookup(ingest, "parse_step_width.feature_dim")
    except KeyError:
        return lines + ["Not measured: the ingest JSON has no parse rate at the step's feature width."]
    step_width = step.get("setup", {}).get("feature_dim")
    if step_width != width:
        return lines + [f"Not comparable: parse rate at F={width}, step at F={step_width}."]
    lines += [f"Both at F = {width} (the records the step consumes).", "",
              "| quantity | value |", "|---|---|"]
    for mode in ("fp32_xla_off", "fp32_xla_on", "bf16_xla_off", "bf16_xla_on"):
        try:
            consume = lookup(step, f"{mode}.examples_per_s")
        except KeyError:
            continue
        ratio = (f"{parse / consume:.2f}x" if isinstance(parse, (int, float))
                 and isinstance(consume, (int, float)) and consume else NA)
        lines.append(f"| tf.data parse rate / step consumption ({mode.replace('_', ' ')}; aim >= 10x) | {ratio} |")
    return lines


def _component_table(data: Dict[str, Any]) -> List[str]:
    comps = data.get("components")
    if not isinstance(comps, dict) or not comps:
        return ["Per-component times: n/a (the run summary has no `components`).", ""]
    lines = ["**Components**", "", "| component | state | seconds |", "|---|---|---|"]
    for name, c in comps.items():
        secs = c.get("seconds") if isinstance(c, dict) else None
        secs_text = f"{secs:.1f}" if isinstance(secs, (int, float)) else NA
        lines.append(f"| {name} | {c.get('state', NA) if isinstance(c, dict) else NA} | {secs_text} |")
    return lines + [""]


def _levels_table(data: Dict[str, Any]) -> List[str]:
    levels = data.get("grpc")
    if not isinstance(levels, list) or not levels:
        return ["Per-concurrency results: n/a (the report has no `grpc` list).", ""]
    keys = ("concurrency", "requests", "errors", "throughput_rps", "p50_ms", "p99_ms")
    lines = ["**gRPC levels**", "", "| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    for level in levels:
        cells = [str(level.get(k, NA)) if isinstance(level, dict) else NA for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "runs", "benchmarks", "report.md"),
                   help="markdown report (default runs/benchmarks/report.md)")
    p.add_argument("--json-dir", default=os.path.join(REPO, "runs", "benchmarks"),
                   help="where each benchmark's JSON and log go (default runs/benchmarks)")
    p.add_argument("--only", help="comma-separated subset of: " + ",".join(b.name for b in BENCHMARKS))
    p.add_argument("--quick", action="store_true", help="smaller settings (minutes, not tens)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark (default 1800)")
    p.add_argument("--from-json", metavar="DIR",
                   help="do not run: render the report from DIR/<name>.json of an earlier run")
    args = p.parse_args(argv)
    names = [n.strip() for n in (args.only or "").split(",") if n.strip()]
    unknown = set(names) - {b.name for b in BENCHMARKS}
    if unknown:
        p.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    chosen = [b for b in BENCHMARKS if not names or b.name in names]
    results: Dict[str, Dict[str, Any]] = {}
    if args.from_json:
        for b in chosen:
            path = os.path.join(args.from_json, f"{b.name}.json")
            results[b.name] = ({"status": "ok", "reason": "", "json": path, "seconds": None,
                                "log": None} if os.path.exists(path) else
                               {"status": "missing", "reason": f"no {path}", "seconds": None})
        source = f"rendered from {args.from_json}"
    else:
        os.makedirs(args.json_dir, exist_ok=True)
        work = os.path.join(args.json_dir, "work")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        for b in chosen:
            print(f"run_all: {b.name} ...", flush=True)
            results[b.name] = run_benchmark(b, args.json_dir, work, args.quick, args.timeout)
            r = results[b.name]
            secs = f"{r['seconds']:.0f} s" if r.get("seconds") is not None else ""
            print(f"run_all: {b.name}: {r['status']} {secs} {r.get('reason', '')}".rstrip(), flush=True)
        source = f"JSON and logs in {os.path.relpath(args.json_dir, REPO)}"
    report = render(results, chosen, quick=args.quick, source=source)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(f"run_all: wrote {args.out}")
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
