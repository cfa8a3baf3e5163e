"""The unlabeled pool of the ``places`` set: area-uniform points on land, same features.

CSP pre-trains on (location, image) pairs that come without labels and in abundance. Here they
are points drawn uniformly by area on the sphere from a seeded generator and kept when the 1 km
land mask the ``land.is_land`` feature reads says land, with the 38 surroundings features
computed from the same rasters as the labeled places (features.Surroundings). They go into the
manifest after the labeled rows with ``split=pretrain`` and no label, so ``csp-tf ingest`` puts
them in the ``pretrain`` split: pre-training reads them, fine-tuning and evaluation never do.

The pool of N rows is the first N land points of the seed's sequence: candidates are drawn in
fixed blocks of ``DRAW_BLOCK``, whatever the chunk size, so a smaller pool is a prefix of a
larger one (pool-size ablations nest) and the same seed gives the same bytes. Memory is bounded:
the rasters' tables are built once, then points are drawn, featurised and appended to the
manifest ``chunk`` rows at a time.

``sea_keep`` > 0 also keeps each sea candidate with that probability (a mixed pool: land and
some ocean, for an encoder that has to place coastlines and open water too). Its points take
ids ``pool%09d`` and a third uniform per candidate decides, so a land-only pool (``sea_keep=0``,
the default) stays exactly the sequence above.
"""

from __future__ import annotations

import csv
import time
from typing import Callable, Dict, Iterator, List, Optional, TextIO, Tuple

import numpy as np

from csp_tf.datasets import features

SPLIT = "pretrain"
ID_FORMAT = "land{:09d}"  # 0-based position in the seed's sequence of land points
ID_FORMAT_MIXED = "pool{:09d}"  # the same with sea_keep > 0: not every point is on land
COORD_DECIMALS = 5        # ~1 m; the features are computed from the coordinates as written
DRAW_BLOCK = 1 << 16      # candidates per generator call: fixes the sequence for a seed
CHUNK = 1 << 16           # rows featurised and written at a time (bounded memory)
SEA_RULE = ("; with sea_keep {:g}: a third uniform u3 per candidate, a sea candidate kept when "
            "u3 < sea_keep, ids pool%09d")
SEED_SALT = 0x706F6F6C    # "pool": the pool's generator never shares a stream with another
RULE = ("lon ~ U(-180, 180), lat = asin(U(-1, 1)) (uniform by area), both written with 5 "
        "decimals; kept when the 1 km land mask (global-land-mask) says land; numpy PCG64 "
        "seeded [0x706F6F6C, seed], drawn 65536 candidates at a time; the pool of N is the first "
        "N kept")


def _format(values: np.ndarray) -> List[str]:
    return [f"{v:.{COORD_DECIMALS}f}" for v in values.tolist()]


def land_points(land: features.Land, n: int, seed: int, sea_keep: float = 0.0
                ) -> Iterator[Tuple[List[str], List[str], np.ndarray, np.ndarray, int, int]]:
    """Yields (lon text, lat text, lon, lat, land points in the block's draws, land points among
    those kept) per block of ``DRAW_BLOCK`` candidates, ``n`` points in all. The floats are the
    written text parsed back. Sea candidates are kept with probability ``sea_keep`` (0: land
    only)."""
    if not 0.0 <= sea_keep <= 1.0:
        raise ValueError(f"sea_keep={sea_keep}: a probability in [0, 1]")
    rng = np.random.default_rng([SEED_SALT, seed])
    left = n
    while left > 0:
        u = rng.random((DRAW_BLOCK, 3 if sea_keep > 0 else 2))
        lon_text = _format(-180.0 + 360.0 * u[:, 0])
        lat_text = _format(np.degrees(np.arcsin(2.0 * u[:, 1] - 1.0)))
        lon, lat = np.asarray(lon_text, np.float64), np.asarray(lat_text, np.float64)
        is_land = land.is_land(lon, lat)
        on_land = np.flatnonzero(is_land)
        kept = np.flatnonzero(is_land | (u[:, 2] < sea_keep)) if sea_keep > 0 else on_land
        keep = kept[:left]
        left -= len(keep)
        yield ([lon_text[i] for i in keep], [lat_text[i] for i in keep], lon[keep], lat[keep],
               len(on_land), int(np.count_nonzero(is_land[keep])))


class _Moments:
    """Per-dimension count / mean / M2 merged chunk by chunk (Chan et al.), float64."""

    def __init__(self, dim: int):
        self.n, self.mean, self.m2 = 0, np.zeros(dim), np.zeros(dim)

    def add(self, x: np.ndarray) -> None:
        n_b, mean_b = len(x), x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / total)
        self.n = total

    def stats(self) -> Dict[str, List[float]]:
        std = np.sqrt(self.m2 / max(self.n, 1))
        return {"mean": [round(float(v), 6) for v in self.mean], "std": [round(float(v), 6) for v in std]}


def write_pool(f: TextIO, surroundings: features.Surroundings, n: int, seed: int,
               chunk: int = CHUNK, log: Callable[[str], None] = print,
               progress_every_s: float = 10.0, sea_keep: float = 0.0) -> Dict[str, object]:
    """Appends ``n`` pool rows (the manifest's columns; label and subset empty) to the open CSV
    ``f``; returns the pool's entry of build_info.json. Logs progress every ``progress_every_s``."""
    id_format = ID_FORMAT_MIXED if sea_keep > 0 else ID_FORMAT
    writer = csv.writer(f, lineterminator="\n")
    moments: Optional[_Moments] = None
    if n <= 0:
        raise ValueError(f"an unlabeled pool needs n >= 1 rows, not {n}")
    done, drawn, on_land, land_rows, t0, last = 0, 0, 0, 0, time.time(), time.time()
    pending: List[Tuple[List[str], List[str], np.ndarray, np.ndarray]] = []

    def flush() -> None:
        nonlocal done, moments
        lon_text = [t for p in pending for t in p[0]]
        lat_text = [t for p in pending for t in p[1]]
        lon = np.concatenate([p[2] for p in pending])
        lat = np.concatenate([p[3] for p in pending])
        pending.clear()
        _, matrix = surroundings.matrix(lon, lat)
        moments = moments or _Moments(matrix.shape[1])
        moments.add(matrix)
        writer.writerows(
            [id_format.format(done + i), lon_text[i], lat_text[i], "",
             " ".join(f"{v:.5g}" for v in row), SPLIT, ""]
            for i, row in enumerate(matrix.tolist()))
        done += len(lon)

    queued = 0
    for lon_text, lat_text, lon, lat, block_land, kept_land in land_points(
            surroundings.land, n, seed, sea_keep):
        drawn, on_land, land_rows = drawn + DRAW_BLOCK, on_land + block_land, land_rows + kept_land
        pending.append((lon_text, lat_text, lon, lat))
        queued += len(lon)
        if queued - done >= chunk:
            flush()
            if time.time() - last >= progress_every_s:
                last = time.time()
                rate = done / (last - t0)
                log(f"unlabeled pool: {done:,}/{n:,} rows ({100 * done / n:.0f} %), "
                    f"{rate:,.0f} rows/s, ~{(n - done) / rate:.0f} s left")
    if pending:
        flush()
    seconds = time.time() - t0
    log(f"unlabeled pool: {done:,} rows in {seconds:.1f} s ({done / max(seconds, 1e-9):,.0f} rows/s)")
    info = {"rows": done, "split": SPLIT, "seed": seed, "rule": RULE,
            "id_format": id_format.replace("{:09d}", "%09d"), "candidates_drawn": drawn,
            "land_share_of_draws": round(on_land / drawn, 6),
            "feature_stats": moments.stats() if moments else None}
    if sea_keep > 0:  # a land-only pool's entry stays as it was
        info.update(sea_keep=sea_keep, rule=RULE + SEA_RULE.format(sea_keep),
                    land_rows=land_rows, sea_rows=done - land_rows)
    return info
