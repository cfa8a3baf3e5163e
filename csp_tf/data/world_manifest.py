"""The generated world's rows and manifest files (``world.generate_world`` decides what they hold).

``observation_rows`` gives every observation an id, a date and an observer; ``broken_rows``
adds the deliberately broken rows the ingest must dead-letter (two per reason the format can
hold, ``inject_bad_rows``); ``write_manifest`` writes CSV, JSON Lines or Parquet with the bad rows
mixed in. It imports nothing from ``world.py`` (tests/test_import_graph.py forbids cycles).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


def observation_rows(lon: np.ndarray, lat: np.ndarray, labels: np.ndarray, labeled: np.ndarray,
                     class_names: Sequence[str], rng: np.random.Generator) -> Dict[str, np.ndarray]:
    n = len(lon)
    days = rng.integers(0, 4018, size=n)  # 2010-01-01 .. 2020-12-31
    dates = (np.datetime64("2010-01-01") + days.astype("timedelta64[D]")).astype(str)
    users = rng.zipf(1.5, size=n) % 500
    names = np.asarray(class_names, dtype=object)
    return {
        "id": np.array([f"obs-{i:07d}" for i in range(n)], dtype=object),
        "lon": np.round(lon, 5), "lat": np.round(lat, 5),
        "label": np.where(labeled, names[labels], ""),
        "date": dates.astype(object),
        "user": np.array([f"user-{u:03d}" for u in users], dtype=object),
    }


def broken_rows(fmt: str, rows: Dict[str, np.ndarray], features: np.ndarray,
                class_names: Sequence[str], rng: np.random.Generator
                ) -> List[Tuple[Dict[str, Any], Optional[str], str]]:
    """(row, raw text override or None, expected reason): two rows of each kind ``fmt`` (the
    manifest format) allows."""
    out: List[Tuple[Dict[str, Any], Optional[str], str]] = []
    duplicated = rng.choice(len(rows["id"]), size=2, replace=False)
    for k in range(2):
        i = int(rng.integers(len(rows["id"])))
        base = {key: rows[key][i] for key in rows}
        base["features"] = features[i]

        def bad(reason: str, raw: Optional[str] = None, **changes: Any) -> None:
            row = {**base, "id": f"bad-{reason}-{k}", **changes}
            out.append((row, raw, reason))

        bad("lon_out_of_range", lon=200.0 + k)
        bad("lat_out_of_range", lat=-95.0 - k)
        bad("not_finite", lat=float("nan"))
        bad("feature_width", features=features[i][:-1])
        bad("unknown_label", label="not_a_species")
        bad("missing_value", id=None)
        bad("duplicate_id", id=rows["id"][duplicated[k]])  # a valid copy of another row's id
        if fmt in ("csv", "jsonl"):
            bad("not_a_number", lon="east")
            bad("bad_features", features="0.1 0.2 oops")
            bad("unparseable_row", raw="{broken json" if fmt == "jsonl" else "x,1,2,3,4,5,6,7,8,9")
    return out


def write_manifest(path: str, fmt: str, rows: Dict[str, np.ndarray], features: np.ndarray,
                    bad: Sequence[Tuple[Dict[str, Any], Optional[str], str]]) -> None:
    if fmt == "parquet":
        _write_parquet(path, rows, features, bad)
        return
    line = _csv_line if fmt == "csv" else _json_line
    text = _feature_strings(features)
    lines = [line({k: rows[k][i] for k in rows}, text[i]) for i in range(len(rows["id"]))]
    for row, raw, _ in bad:
        feats = row["features"]
        ftext = feats if isinstance(feats, str) else " ".join(f"{v:.4f}" for v in feats)
        lines.append(raw if raw is not None else line(row, ftext))
    order = np.random.default_rng(len(lines)).permutation(len(lines))  # mix bad rows in
    with open(path, "w") as f:
        if fmt == "csv":
            f.write("id,lon,lat,label,date,user,features\n")
        f.write("".join(lines[j] + "\n" for j in order))


def _feature_strings(features: np.ndarray) -> List[str]:
    buf = io.StringIO()
    np.savetxt(buf, features, fmt="%.4f", delimiter=" ")
    return buf.getvalue().splitlines()


def _csv_line(row: Dict[str, Any], features_text: str) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else str(value)
        return str(value)

    return ",".join([cell(row["id"]), cell(row["lon"]), cell(row["lat"]), cell(row["label"]),
                     cell(row["date"]), cell(row["user"]), features_text])


def _json_line(row: Dict[str, Any], features_text: str) -> str:
    try:
        feats = "[" + ", ".join(features_text.split()) + "]"
        json.loads(feats)
    except ValueError:
        feats = json.dumps(features_text)  # a deliberately bad features string
    fields = {k: (float(row[k]) if isinstance(row[k], (float, np.floating)) else row[k])
              for k in ("id", "lon", "lat", "label", "date", "user")}
    fields = {k: v for k, v in fields.items() if v is not None}
    head = json.dumps(fields)[:-1]
    return f'{head}, "features": {feats}}}'


def _write_parquet(path: str, rows: Dict[str, np.ndarray], features: np.ndarray,
                   bad: Sequence[Tuple[Dict[str, Any], Optional[str], str]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = [row for row, _, _ in bad]
    feats = [np.asarray(f, np.float32) for f in features] + [np.asarray(r["features"], np.float32) for r in extra]
    order = np.random.default_rng(len(feats)).permutation(len(feats))

    def column(key: str) -> List[Any]:
        values = list(rows[key]) + [r[key] for r in extra]
        return [values[j] for j in order]

    offsets = np.concatenate([[0], np.cumsum([len(feats[j]) for j in order])]).astype(np.int32)
    flat = np.concatenate([feats[j] for j in order]).astype(np.float32)
    table = pa.table({
        "id": pa.array(column("id"), pa.string()),
        "lon": pa.array(np.asarray(column("lon"), dtype=np.float64)),
        "lat": pa.array(np.asarray(column("lat"), dtype=np.float64)),
        "label": pa.array([v if v else None for v in column("label")], pa.string()),
        "date": pa.array(column("date"), pa.string()),
        "user": pa.array(column("user"), pa.string()),
        "features": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
    })
    pq.write_table(table, path, row_group_size=16384)

