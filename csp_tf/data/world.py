"""A generated world with the structure that makes CSP's location prior useful (as in iNat).

* **Look-alike groups.** Species come in groups whose image-feature prototypes nearly coincide
  (within-group spread ``group_spread`` << the ~unit between-group spread), so features alone
  confuse species of one group while telling groups apart.
* **Mostly disjoint ranges inside a group.** Each species' range is 1-3 Gaussian blobs on land
  (``global_land_mask``); most members of a group are centred far apart (farthest-point picks
  among land cells), so location disambiguates what the image cannot.
* **Overlapping look-alikes.** With probability ``range_overlap`` a member is instead centred
  within ~``overlap_deg`` of a look-alike already placed (its ``overlaps_with``): neither the
  image nor the location separates the two, only abundance does, as for iNat's sympatric
  look-alikes. Groups hold 4-5 look-alikes (``small``: 20 species in 4 groups).
* **Long tail.** Species abundances follow a Zipf law (``zipf_exponent``) over a random order.
* **Observer bias.** Where a species is observed is its range times a population map: a few
  Gaussian population centres (Europe, eastern US, India, East Asia, ...) over a floor.
* **Features** are prototype + Gaussian noise (``noise``), width ``feature_dim`` (default 64).

Outputs in ``out_dir``: the manifest (``manifest.csv|.jsonl|.parquet``: id, lon, lat, label,
date, user, features; unlabeled rows have an empty label), ``labels.txt``, ``world.json`` (all
parameters, species, groups, counts) and ``true_ranges.npz`` (per-species range and observation
densities on a ``grid_deg`` lon/lat grid with its axes, the land fraction, the population map and
the prototypes): for maps and for checking a learned location prior. Deterministic per seed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from csp_tf.data.errors import DataError
from csp_tf.data.world_manifest import broken_rows, observation_rows, write_manifest

LOG = logging.getLogger("csp_tf.data.world")

# Named sizes: (num_species, num_groups, num_unlabeled, num_labeled).
SIZES: Dict[str, Tuple[int, int, int, int]] = {
    "tiny": (8, 2, 600, 400),          # unit tests
    "small": (20, 4, 8000, 3000),      # the demo: generates and ingests in seconds
    "benchmark": (100, 20, 70000, 30000),
}
MANIFEST_FORMATS = ("csv", "jsonl", "parquet")

# (name, lon, lat, sigma in degrees, weight): rough centres of where people (and observers) are.
POPULATION_CENTERS: Tuple[Tuple[str, float, float, float, float], ...] = (
    ("western_europe", 5.0, 49.0, 8.0, 1.0),
    ("eastern_us", -80.0, 38.0, 8.0, 1.0),
    ("us_west_coast", -120.0, 37.0, 5.0, 0.4),
    ("mexico", -99.0, 19.0, 4.0, 0.3),
    ("southeast_brazil", -46.0, -22.0, 6.0, 0.5),
    ("west_africa", 4.0, 7.0, 5.0, 0.4),
    ("east_africa", 37.0, -1.0, 5.0, 0.3),
    ("india", 78.0, 23.0, 8.0, 0.9),
    ("east_china", 115.0, 32.0, 9.0, 1.0),
    ("japan", 138.0, 36.0, 3.0, 0.4),
    ("southeast_asia", 106.0, 10.0, 6.0, 0.4),
    ("southeast_australia", 150.0, -33.0, 4.0, 0.3),
)
POPULATION_FLOOR = 0.05  # relative observer density far from every centre


@dataclasses.dataclass
class WorldParams:
    """Every parameter of a generated world (saved to ``world.json``)."""

    num_species: int = 20
    num_groups: int = 5
    feature_dim: int = 64
    num_unlabeled: int = 8000
    num_labeled: int = 3000
    seed: int = 0
    manifest_format: str = "csv"
    inject_bad_rows: bool = False
    grid_deg: float = 2.0
    zipf_exponent: float = 1.0
    group_spread: float = 0.12
    noise: float = 1.0
    range_sigma_deg: Tuple[float, float] = (4.0, 12.0)
    population_bias: float = 1.5  # observed density ∝ range · population^bias
    range_overlap: float = 0.3    # P(a look-alike is centred next to one already placed); 0: none
    overlap_deg: float = 6.0      # how close such a pair's centres are (Gaussian scale, degrees)

    def validate(self) -> "WorldParams":
        if self.num_species < 2 or self.num_groups < 1 or self.num_groups > self.num_species:
            raise DataError(f"need num_species >= 2 and 1 <= num_groups <= num_species, got "
                            f"{self.num_species} species in {self.num_groups} groups")
        if self.feature_dim < 2:
            raise DataError(f"feature_dim={self.feature_dim} must be >= 2")
        if self.num_unlabeled < 0 or self.num_labeled < self.num_species:
            raise DataError(f"need num_unlabeled >= 0 and num_labeled >= num_species "
                            f"({self.num_species}), got {self.num_unlabeled} / {self.num_labeled}")
        if self.manifest_format not in MANIFEST_FORMATS:
            raise DataError(f"manifest_format={self.manifest_format!r} is not one of "
                            f"{', '.join(MANIFEST_FORMATS)}")
        if not 0.0 <= self.range_overlap <= 1.0 or self.overlap_deg <= 0:
            raise DataError(f"range_overlap={self.range_overlap} must lie in [0, 1] and "
                            f"overlap_deg={self.overlap_deg} be > 0")
        if not 0.1 <= self.grid_deg <= 10 or (180.0 / self.grid_deg) % 1:
            raise DataError(f"grid_deg={self.grid_deg} must divide 180 and lie in [0.1, 10]")
        return self


def generate_world(out_dir: str, size: str = "small", *, num_species: Optional[int] = None,
                   num_groups: Optional[int] = None, feature_dim: int = 64,
                   num_unlabeled: Optional[int] = None, num_labeled: Optional[int] = None,
                   seed: int = 0, manifest_format: str = "csv", inject_bad_rows: bool = False,
                   **overrides: Any) -> Dict[str, Any]:
    """Generates a world into ``out_dir`` and returns what was written.

    ``size`` picks the defaults (``tiny``, ``small``, ``benchmark``); the explicit counts
    override them. Further ``WorldParams`` fields (``grid_deg``, ``zipf_exponent``,
    ``group_spread``, ``noise``, ...) can be passed as keywords. With ``inject_bad_rows`` a few
    rows of every kind the ingest rejects are mixed into the manifest; ``world.json`` lists how
    many of each reason to expect in the dead letter.

    Returns a dict with ``manifest``, ``labels``, ``world``, ``ranges`` paths, ``class_names``,
    ``rows`` (valid rows), ``bad_rows`` ({reason: count}) and ``params``.
    """
    if size not in SIZES:
        raise DataError(f"unknown world size {size!r}; sizes: {', '.join(SIZES)}")
    d_species, d_groups, d_unlabeled, d_labeled = SIZES[size]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(WorldParams)}
    if unknown:
        raise DataError(f"unknown world parameter(s): {', '.join(sorted(unknown))}")
    params = WorldParams(
        num_species=num_species or d_species, num_groups=num_groups or d_groups,
        feature_dim=feature_dim, num_unlabeled=d_unlabeled if num_unlabeled is None else num_unlabeled,
        num_labeled=d_labeled if num_labeled is None else num_labeled, seed=seed,
        manifest_format=manifest_format, inject_bad_rows=inject_bad_rows, **overrides).validate()
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(params.seed)

    grid = _Grid(params.grid_deg)
    land = grid.land_fraction()
    population = grid.population()
    species = _make_species(params, grid, land, rng)
    range_density = np.stack([grid.range_density(s["blobs"], land) for s in species])
    observed = range_density * population[None] ** params.population_bias
    observed /= observed.sum(axis=(1, 2), keepdims=True)
    prototypes = _prototypes(params, [s["group"] for s in species], rng)
    abundance = np.array([s["abundance"] for s in species])

    total = params.num_unlabeled + params.num_labeled
    labels = rng.choice(params.num_species, size=total, p=abundance)
    lon, lat = grid.sample_points(observed, labels, rng)
    features = prototypes[labels] + params.noise * rng.standard_normal((total, params.feature_dim))
    features = np.round(features, 4).astype(np.float32)  # 4 decimals in every manifest format
    labeled = np.zeros(total, dtype=bool)
    labeled[rng.permutation(total)[:params.num_labeled]] = True
    class_names = [s["name"] for s in species]
    rows = observation_rows(lon, lat, labels, labeled, class_names, rng)
    bad = (broken_rows(params.manifest_format, rows, features, class_names, rng)
           if params.inject_bad_rows else [])
    bad_rows = dict(sorted(collections.Counter(reason for _, _, reason in bad).items()))

    manifest = os.path.join(out_dir, f"manifest.{params.manifest_format}")
    write_manifest(manifest, params.manifest_format, rows, features, bad)
    labels_path = os.path.join(out_dir, "labels.txt")
    with open(labels_path, "w") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    ranges_path = os.path.join(out_dir, "true_ranges.npz")
    np.savez_compressed(
        ranges_path, lon=grid.lon, lat=grid.lat, range_density=range_density.astype(np.float32),
        observation_density=observed.astype(np.float32), land_fraction=land.astype(np.float32),
        population=population.astype(np.float32), prototypes=prototypes.astype(np.float32),
        group=np.array([s["group"] for s in species]), class_names=np.array(class_names))
    world = {
        "params": dataclasses.asdict(params),
        "class_names": class_names,
        "groups": [[s["name"] for s in species if s["group"] == g] for g in range(params.num_groups)],
        "species": [dict(s) for s in species],
        "population_centers": [dict(zip(("name", "lon", "lat", "sigma_deg", "weight"), c))
                               for c in POPULATION_CENTERS],
        "population_floor": POPULATION_FLOOR,
        "counts": {"rows": total, "labeled": int(labeled.sum()), "unlabeled": int((~labeled).sum()),
                   "labeled_per_class": np.bincount(labels[labeled], minlength=params.num_species).tolist(),
                   "bad_rows": bad_rows, "manifest_rows": total + len(bad)},
        "files": {"manifest": os.path.basename(manifest), "labels": "labels.txt",
                  "true_ranges": "true_ranges.npz"},
    }
    world_path = os.path.join(out_dir, "world.json")
    with open(world_path, "w") as f:
        json.dump(world, f, indent=2)
    LOG.info("world: %d species in %d groups, %d labeled + %d unlabeled rows (+%d bad) -> %s",
             params.num_species, params.num_groups, params.num_labeled, params.num_unlabeled,
             len(bad), manifest)
    return {"manifest": manifest, "labels": labels_path, "world": world_path, "ranges": ranges_path,
            "class_names": class_names, "rows": total, "bad_rows": bad_rows,
            "params": dataclasses.asdict(params)}


# ----- geography --------------------------------------------------------------------------------
class _Grid:
    """A lon/lat grid of ``deg`` cells: centres ``lon`` (n_lon,), ``lat`` (n_lat,)."""

    def __init__(self, deg: float) -> None:
        self.deg = deg
        self.lon = np.arange(-180 + deg / 2, 180, deg)
        self.lat = np.arange(-90 + deg / 2, 90, deg)
        self.lon2d, self.lat2d = np.meshgrid(self.lon, self.lat)

    def land_fraction(self, sub: int = 8) -> np.ndarray:
        """Fraction of each cell on land, from sub x sub sample points per cell."""
        from global_land_mask import globe

        offsets = (np.arange(sub) + 0.5) / sub * self.deg
        lats = (self.lat[:, None] - self.deg / 2 + offsets[None]).reshape(-1)
        lons = (self.lon[:, None] - self.deg / 2 + offsets[None]).reshape(-1)
        lon2d, lat2d = np.meshgrid(lons, lats)
        mask = globe.is_land(lat2d, lon2d)
        return mask.reshape(len(self.lat), sub, len(self.lon), sub).mean(axis=(1, 3))

    def _bumps(self, density: np.ndarray, bumps) -> np.ndarray:
        """``density`` plus weighted Gaussians, for each (lon, lat, sigma in degrees, weight)."""
        for lon, lat, sigma, weight in bumps:
            d = angular_distance(self.lon2d, self.lat2d, lon, lat)
            density += weight * np.exp(-0.5 * (d / sigma) ** 2)
        return density

    def population(self) -> np.ndarray:
        """Relative observer density: floor + Gaussian population centres."""
        return self._bumps(np.full(self.lon2d.shape, POPULATION_FLOOR),
                           (c[1:] for c in POPULATION_CENTERS))

    def range_density(self, blobs: Sequence[Dict[str, float]], land: np.ndarray) -> np.ndarray:
        """A species' range: Gaussian blobs times land fraction, tails cut, sums to 1."""
        density = self._bumps(np.zeros(self.lon2d.shape), ((b["lon"], b["lat"], b["sigma_deg"],
                                                             b["weight"]) for b in blobs))
        density *= land
        density[density < 1e-3 * density.max()] = 0.0
        return density / density.sum()

    def sample_points(self, densities: np.ndarray, labels: np.ndarray,
                      rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """One point per label: a cell from its species' density, then a land point inside it."""
        from global_land_mask import globe

        lon, lat = np.empty((2, len(labels)))
        cell = np.empty(len(labels), dtype=np.int64)
        for s in np.unique(labels):
            idx = np.flatnonzero(labels == s)
            cell[idx] = rng.choice(densities[s].size, size=len(idx), p=densities[s].reshape(-1))
        row, col = np.divmod(cell, len(self.lon))
        todo = np.arange(len(labels))
        for _ in range(64):  # re-draw inside the same cell until the point is on land
            lon[todo] = self.lon[col[todo]] + (rng.random(len(todo)) - 0.5) * self.deg
            lat[todo] = self.lat[row[todo]] + (rng.random(len(todo)) - 0.5) * self.deg
            todo = todo[~globe.is_land(lat[todo], lon[todo])]
            if not len(todo):
                break
        return np.clip(lon, -180, 180), np.clip(lat, -90, 90)


def angular_distance(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in degrees (haversine)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


# ----- species ----------------------------------------------------------------------------------
def _make_species(params: WorldParams, grid: _Grid, land: np.ndarray,
                  rng: np.random.Generator) -> List[Dict[str, Any]]:
    """Names, groups, Zipf abundances and range blobs.

    Look-alikes are centred far apart, except that with probability ``range_overlap`` one is
    centred near a member already placed (no extra random draw when it is 0, so such worlds
    are the same as before the option existed).
    """
    n = params.num_species
    group_of = rng.permutation(np.arange(n) % params.num_groups)
    ranks = rng.permutation(n)
    abundance = 1.0 / (ranks + 1.0) ** params.zipf_exponent
    abundance /= abundance.sum()

    # candidate centres: mostly-land cells away from the poles, weighted by area
    ok = (land > 0.6) & (np.abs(grid.lat2d) < 65)
    cand_lon, cand_lat = grid.lon2d[ok], grid.lat2d[ok]
    area = np.cos(np.radians(cand_lat))
    centers: Dict[int, Tuple[float, float]] = {}
    overlaps: Dict[int, int] = {}
    for g in range(params.num_groups):
        chosen: List[int] = []
        placed: List[int] = []
        for s in np.flatnonzero(group_of == g):
            if not chosen:
                pick = rng.choice(len(cand_lon), p=area / area.sum())
            elif params.range_overlap > 0 and rng.random() < params.range_overlap:
                partner = placed[int(rng.integers(len(placed)))]
                pick = rng.choice(len(cand_lon), p=_near(cand_lon, cand_lat, *centers[partner],
                                                         params.overlap_deg))
                overlaps[int(s)] = partner
            else:
                dist = np.min([angular_distance(cand_lon, cand_lat, cand_lon[c], cand_lat[c])
                               for c in chosen], axis=0)
                far = np.argsort(dist)[-max(1, len(dist) // 20):]  # the farthest 5 %
                pick = rng.choice(far)
            chosen.append(int(pick))
            placed.append(int(s))
            centers[int(s)] = (float(cand_lon[pick]), float(cand_lat[pick]))

    species = []
    low, high = params.range_sigma_deg
    for s in range(n):
        lon0, lat0 = centers[s]
        blobs = [{"lon": lon0, "lat": lat0, "sigma_deg": float(rng.uniform(low, high)), "weight": 1.0}]
        for _ in range(int(rng.integers(0, 3))):  # 0-2 satellite blobs near the main one
            j = rng.choice(len(cand_lon), p=_near(cand_lon, cand_lat, lon0, lat0, 15.0))
            blobs.append({"lon": float(cand_lon[j]), "lat": float(cand_lat[j]),
                          "sigma_deg": float(rng.uniform(low, high) * 0.7),
                          "weight": float(rng.uniform(0.3, 0.8))})
        species.append({"name": f"sp{s:03d}_g{int(group_of[s]):02d}", "group": int(group_of[s]),
                        "abundance": float(abundance[s]), "abundance_rank": int(ranks[s]),
                        "overlaps_with": (f"sp{overlaps[s]:03d}_g{int(group_of[overlaps[s]]):02d}"
                                          if s in overlaps else None),
                        "blobs": blobs})
    return species


def _near(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float, scale: float) -> np.ndarray:
    weights = np.exp(-0.5 * (angular_distance(lon, lat, lon0, lat0) / scale) ** 2)
    return weights / weights.sum()


def _prototypes(params: WorldParams, groups: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Group centres ~ N(0, I); species = group centre + group_spread * N(0, I)."""
    centres = rng.standard_normal((params.num_groups, params.feature_dim))
    return centres[np.asarray(groups)] + params.group_spread * rng.standard_normal(
        (params.num_species, params.feature_dim))
