"""Cost of the place memory (``csp_tf.models.place_memory``): the exact in-graph neighbour
search, measured beside what bounds it, in one run.

The search scores every query against every place (B × N float64 dot products over 3 numbers)
and keeps the top K = 50. Its floor on this machine is one pass over a B × N float64 score
matrix: the ``scan limit`` is the best of ``tf.reduce_max`` and ``numpy.max`` over such a matrix
already in memory (the search must at least produce and read that many scores). Reported, per
memory size N (places) and query batch B:

* ``search_scores_per_s``: B·N / (time of ``PlaceMemory.neighbours``), and its fraction of the
  scan limit (1.0 = the search costs no more than reading its scores once);
* ``balltree_rows_per_s``: scikit-learn's BallTree (haversine, the same K) on the same places
  and queries: a tree instead of brute force, exact as well (the kNN baseline's index);
* ``model_ms`` / ``model_network_ms``: ``CSPModel.location_probs`` for the batch with the
  memory on and off (the `places` network, 512 wide), so the memory's share of a request is
  visible.

    python benchmarks/place_memory.py [--sizes 20000,100000] [--batches 1,64,4096] [--out J]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Callable, Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from csp_tf.configs import get_preset  # noqa: E402
from csp_tf.models import build_csp_model  # noqa: E402
from csp_tf.models.place_memory import EARTH_RADIUS_KM, MAX_NEIGHBOURS  # noqa: E402


def best_seconds(fn: Callable[[], object], rounds: int, min_seconds: float = 0.2) -> float:
    """Best per-call time over ``rounds`` rounds of enough calls to last ``min_seconds``."""
    fn()  # warm-up (tracing)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        calls += 1
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def random_places(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform on the sphere (lon, lat in degrees)."""
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return np.c_[rng.uniform(-180, 180, n), lat]


def scan_limit(b: int, n: int, rounds: int) -> Dict[str, float]:
    """Scores/s of one read pass over a B × N float64 matrix (tf and numpy; best)."""
    scores = np.random.default_rng(0).random((b, n))
    t_np = best_seconds(lambda: scores.max(axis=1), rounds)
    tensor = tf.constant(scores)
    reduce = tf.function(lambda x: tf.reduce_max(x, axis=1))
    t_tf = best_seconds(lambda: reduce(tensor).numpy(), rounds)
    return {"numpy_scores_per_s": b * n / t_np, "tf_scores_per_s": b * n / t_tf,
            "scores_per_s": b * n / min(t_np, t_tf)}


def measure(n: int, b: int, rounds: int) -> Dict[str, float]:
    from sklearn.neighbors import BallTree

    rng = np.random.default_rng(n + b)
    cfg = get_preset("places")
    cfg.data.num_classes, cfg.data.feature_dim = 194, 38
    model = build_csp_model(cfg, place_memory_size=n)
    places = random_places(rng, n)
    model.place_memory.set_places(places, rng.integers(0, 194, n))
    model.place_memory.set_params(5, 1.0, 0.01)
    queries = tf.constant(random_places(rng, b).astype(np.float32))
    search = tf.function(model.place_memory.neighbours)
    t_search = best_seconds(lambda: search(queries)[0].numpy(), rounds)
    tree = BallTree(np.radians(places[:, ::-1]), metric="haversine")
    q_rad = np.radians(queries.numpy()[:, ::-1].astype(np.float64))
    t_tree = best_seconds(lambda: tree.query(q_rad, k=MAX_NEIGHBOURS), rounds)
    # Same answer from both (distances in km): the benchmark times equal work.
    d_tree = tree.query(q_rad, k=MAX_NEIGHBOURS)[0] * EARTH_RADIUS_KM
    max_diff = float(np.abs(search(queries)[0].numpy() - d_tree).max())
    with_memory = tf.function(lambda x: model.location_probs(x))
    network_only = tf.function(lambda x: model.location_probs(x, memory=False))
    t_model = best_seconds(lambda: with_memory(queries).numpy(), rounds)
    t_network = best_seconds(lambda: network_only(queries).numpy(), rounds)
    limit = scan_limit(b, n, rounds)
    return {"places": n, "batch": b, "search_ms": 1e3 * t_search,
            "search_scores_per_s": b * n / t_search,
            "fraction_of_scan_limit": (b * n / t_search) / limit["scores_per_s"],
            "scan_limit": limit, "balltree_ms": 1e3 * t_tree,
            "balltree_rows_per_s": b / t_tree, "search_rows_per_s": b / t_search,
            "search_vs_balltree": t_tree / t_search, "max_distance_diff_km": max_diff,
            "model_ms": 1e3 * t_model, "model_network_ms": 1e3 * t_network,
            "memory_share_of_model": 1.0 - t_network / t_model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--batches", default="1,64,4096")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    rows: List[Dict[str, float]] = []
    for n in (int(v) for v in args.sizes.split(",")):
        for b in (int(v) for v in args.batches.split(",")):
            r = measure(n, b, args.rounds)
            rows.append(r)
            print(f"N={n:>6} B={b:>4}: search {r['search_ms']:8.2f} ms "
                  f"({r['fraction_of_scan_limit']:.2f} of the scan limit), BallTree "
                  f"{r['balltree_ms']:8.2f} ms (search {r['search_vs_balltree']:.2f}× its speed), "
                  f"P(y|loc) {r['model_ms']:.2f} ms vs {r['model_network_ms']:.2f} ms without "
                  f"memory; max |Δd| {r['max_distance_diff_km']:.1e} km", flush=True)
    out = {"benchmark": "place_memory", "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "tensorflow": tf.__version__, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
