"""Helpers shared by the csp_tf.data tests (manifest and dead-letter readers)."""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Dict

import numpy as np


def read_manifest_rows(path: str) -> Dict[str, Dict[str, Any]]:
    """The good generated rows (ids ``obs-*``) of a manifest: id -> {lon, lat, label, features}.

    When an id is repeated (the injected duplicates) the entry holds None: which copy the
    ingest keeps is its own stable choice.
    """
    rows: Dict[str, Any] = {}

    def add(row_id, lon, lat, label, features):
        if not isinstance(row_id, str) or not row_id.startswith("obs-"):
            return
        value = {"lon": float(lon), "lat": float(lat), "label": label or None,
                 "features": np.asarray(features, dtype=np.float32)}
        rows[row_id] = None if row_id in rows else value

    if path.endswith(".csv"):
        with open(path) as f:
            for rec in csv.DictReader(f):
                if rec.get("features") and len(rec) == 7 and None not in rec:
                    try:
                        add(rec["id"], rec["lon"], rec["lat"], rec["label"], rec["features"].split())
                    except ValueError:
                        pass
    elif path.endswith(".jsonl"):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    add(rec.get("id"), rec["lon"], rec["lat"], rec.get("label"), rec["features"])
                except (ValueError, KeyError, TypeError):
                    pass
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pydict()
        for i, row_id in enumerate(table["id"]):
            add(row_id, table["lon"][i], table["lat"][i], table["label"][i], table["features"][i])
    return rows


def read_dead_letter(root: str):
    """All dead-letter records of a data root."""
    out = []
    folder = os.path.join(root, "dead_letter")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out
