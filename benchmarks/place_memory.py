"""Cost of the place memory (``csp_tf.models.place_memory``): the exact in-graph neighbour
search, measured beside what bounds it, in one run.

The search bounds each query's dot product with caps of 32 places, reads the places of its 32
best caps exactly and keeps the top K = 50 (brute force for a query the caps cannot settle, and
for batches of at most 4). Measured beside it, on the same places and queries, with the same
answers checked:

* ``scan_ms``: the same layer scanning every place (B × N float64 dot products and a top-K, the
  search before the caps); ``scan_vs_search`` = scan time / search time;
* the ``scan limit``: the best of ``tf.reduce_max`` and ``numpy.max`` over a B × N float64
  matrix already in memory, the floor of *any* search that scores every place;
  ``fraction_of_scan_limit`` = (B·N / search time) / that rate (above 1.0: faster than reading
  all B × N scores once, which only pruning can be);
* ``balltree_ms``: scikit-learn's BallTree (haversine, the same K), an exact tree as well (the
  kNN baseline's index);
* ``proven_fraction``: the queries the caps settled (the rest scanned every place);
* ``model_ms`` / ``model_network_ms``: ``CSPModel.location_probs`` for the batch with the
  memory on (k = 5) and off (the `places` network, 512 wide): the memory's share of a request.

Places and queries are ``uniform`` on the sphere or ``clustered`` (towns around 60 centres plus
a 20 % uniform scatter; queries drawn the same way), the latter closer to real place sets.

    python benchmarks/place_memory.py [--sizes 20000,100000] [--batches 1,64,4096]
        [--layouts uniform,clustered] [--out J]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from csp_tf.configs import get_preset  # noqa: E402
from csp_tf.models import build_csp_model  # noqa: E402
from timing import best_seconds  # noqa: E402  (benchmarks/timing.py)
from csp_tf.models import place_memory as pm  # noqa: E402
from csp_tf.models.place_memory import EARTH_RADIUS_KM, MAX_NEIGHBOURS  # noqa: E402


def random_places(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform on the sphere (lon, lat in degrees)."""
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return np.c_[rng.uniform(-180, 180, n), lat]


def clustered_places(rng: np.random.Generator, n: int) -> np.ndarray:
    """Towns: Gaussian clusters (0.5°) around 60 fixed centres, plus a 20 % uniform scatter."""
    centres = random_places(np.random.default_rng(12345), 60)
    out = centres[rng.integers(0, 60, n)] + rng.normal(0, 0.5, (n, 2))
    out[:, 0] = (out[:, 0] + 180.0) % 360.0 - 180.0
    out[:, 1] = np.clip(out[:, 1], -89.99, 89.99)
    lone = rng.random(n) < 0.2
    out[lone] = random_places(rng, int(lone.sum()))
    return out


LAYOUTS = {"uniform": random_places, "clustered": clustered_places}


def scan_limit(b: int, n: int, rounds: int) -> Dict[str, float]:
    """Scores/s of one read pass over a B × N float64 matrix (tf and numpy; best)."""
    scores = np.random.default_rng(0).random((b, n))
    t_np = best_seconds(lambda: scores.max(axis=1), rounds)
    tensor = tf.constant(scores)
    reduce = tf.function(lambda x: tf.reduce_max(x, axis=1))
    t_tf = best_seconds(lambda: reduce(tensor).numpy(), rounds)
    return {"numpy_scores_per_s": b * n / t_np, "tf_scores_per_s": b * n / t_tf,
            "scores_per_s": b * n / min(t_np, t_tf)}


def measure(n: int, b: int, rounds: int, layout: str = "uniform") -> Dict[str, float]:
    from sklearn.neighbors import BallTree

    rng = np.random.default_rng(n + b)
    draw = LAYOUTS[layout]
    cfg = get_preset("places")
    cfg.data.num_classes, cfg.data.feature_dim = 194, 38
    model = build_csp_model(cfg, place_memory_size=n)
    places, labels = draw(rng, n), rng.integers(0, 194, n)
    memory = model.place_memory
    memory.set_places(places, labels)
    memory.set_params(5, 1.0, 0.01)
    queries = tf.constant(draw(rng, b).astype(np.float32))
    search = tf.function(memory.neighbours)
    t_search = best_seconds(lambda: search(queries)[0].numpy(), rounds)
    scanner = pm.PlaceMemory(n, 194)  # same places, every one scored
    scanner.set_places(places, labels)
    scanner.prune_with_caps = False
    scan = tf.function(scanner.neighbours)
    t_scan = best_seconds(lambda: scan(queries)[0].numpy(), rounds)
    tree = BallTree(np.radians(places[:, ::-1]), metric="haversine")
    q_rad = np.radians(queries.numpy()[:, ::-1].astype(np.float64))
    t_tree = best_seconds(lambda: tree.query(q_rad, k=MAX_NEIGHBOURS), rounds)
    # Same answers from all three (distances in km): the benchmark times equal work.
    d_tree = tree.query(q_rad, k=MAX_NEIGHBOURS)[0] * EARTH_RADIUS_KM
    d_search = search(queries)[0].numpy()
    max_diff = float(np.abs(d_search - d_tree).max())
    max_diff_scan = float(np.abs(d_search - scan(queries)[0].numpy()).max())
    q = pm.unit_vectors(queries)
    centre, radius = pm.block_caps(memory.points, pm.BLOCK)
    proven = pm.pruned_search(q, memory.points, centre, radius, MAX_NEIGHBOURS, MAX_NEIGHBOURS)[2]
    with_memory = tf.function(lambda x: model.location_probs(x))
    network_only = tf.function(lambda x: model.location_probs(x, memory=False))
    t_model = best_seconds(lambda: with_memory(queries).numpy(), rounds)
    t_network = best_seconds(lambda: network_only(queries).numpy(), rounds)
    limit = scan_limit(b, n, rounds)
    return {"places": n, "batch": b, "layout": layout, "search_ms": 1e3 * t_search,
            "search_scores_per_s": b * n / t_search,
            "fraction_of_scan_limit": (b * n / t_search) / limit["scores_per_s"],
            "scan_limit": limit, "scan_ms": 1e3 * t_scan, "scan_vs_search": t_scan / t_search,
            "scan_fraction_of_scan_limit": (b * n / t_scan) / limit["scores_per_s"],
            "balltree_ms": 1e3 * t_tree,
            "balltree_rows_per_s": b / t_tree, "search_rows_per_s": b / t_search,
            "search_vs_balltree": t_tree / t_search, "max_distance_diff_km": max_diff,
            "max_distance_diff_to_scan_km": max_diff_scan,
            "proven_fraction": float(np.mean(proven.numpy())),
            "model_ms": 1e3 * t_model, "model_network_ms": 1e3 * t_network,
            "memory_share_of_model": 1.0 - t_network / t_model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--batches", default="1,64,4096")
    ap.add_argument("--layouts", default="uniform,clustered")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    rows: List[Dict[str, float]] = []
    for layout in args.layouts.split(","):
        for n in (int(v) for v in args.sizes.split(",")):
            for b in (int(v) for v in args.batches.split(",")):
                r = measure(n, b, args.rounds, layout)
                rows.append(r)
                print(f"{layout:>9} N={n:>6} B={b:>4}: search {r['search_ms']:8.2f} ms, scan "
                      f"{r['scan_ms']:8.2f} ms ({r['scan_vs_search']:.1f}x), BallTree "
                      f"{r['balltree_ms']:8.2f} ms ({r['search_vs_balltree']:.2f}x), "
                      f"{r['fraction_of_scan_limit']:.2f} of the scan limit, proven "
                      f"{r['proven_fraction']:.3f}; P(y|loc) {r['model_ms']:.2f} ms vs "
                      f"{r['model_network_ms']:.2f} ms without memory; max |Δd| "
                      f"{r['max_distance_diff_km']:.1e} km", flush=True)
    out = {"benchmark": "place_memory", "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "tensorflow": tf.__version__, "rows": rows,
           # the report reads cases by name, so a run of a subset never fills another's rows
           "cases": {f"{r['layout']}_{r['places']}_{r['batch']}": r for r in rows}}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
