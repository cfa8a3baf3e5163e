"""Writes tests/fixtures/geoclip_parity.npz: GeoCLIP's own PyTorch location encoder on 64 points.

The expected vectors for the parity test of csp-tf's Keras port (tests/csp_tf/test_pretrained_geoclip.py).
NEEDS PyTorch and the pinned ``geoclip`` wheel, so it runs in a throwaway environment, never in
csp-tf's own (csp-tf reads the weights without torch)::

    python3.11 -m venv gcvenv
    gcvenv/bin/pip install torch==2.13.0 numpy pandas python-dateutil pytz tzdata
    gcvenv/bin/pip install --no-deps geoclip==1.3.0
    gcvenv/bin/python scripts/make_geoclip_parity_fixture.py --out tests/fixtures/geoclip_parity.npz

The points: both poles, the antimeridian from both sides, the equator, the prime meridian, the
corners of the lon/lat box and 40 area-uniform random points (seed 0). GeoCLIP takes (lat, lon);
the fixture stores csp-tf's (lon, lat) order. It holds the float32 output (the reference as
GeoCLIP runs it) and the same network run in float64 (the function without float32 rounding; stored as float32).
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np


def parity_points() -> np.ndarray:
    """(64, 2) lon/lat degrees, float32."""
    fixed = [(0, 90), (0, -90), (123.4, 90), (-45.6, -90),              # poles
             (180, 0), (-180, 0), (179.999, 45.5), (-179.999, 45.5),    # antimeridian
             (180, -33.3), (-180, 66.6), (179.5, -12), (-179.5, 12),
             (0, 0), (90, 0), (-90, 0), (45, 0),                        # equator
             (0, 51.48), (0, -51.48), (0, 10), (0, -70),                # prime meridian
             (180, 90), (-180, 90), (180, -90), (-180, -90),            # corners
             (-122.42, 37.77), (2.35, 48.86)]
    rng = np.random.default_rng(0)
    n = 64 - len(fixed)
    lon = rng.uniform(-180.0, 180.0, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return np.concatenate([np.asarray(fixed, np.float64), np.stack([lon, lat], 1)]).astype(np.float32)


def _location_encoder_module():
    """geoclip.model.location_encoder without running the package's __init__ (which imports
    the image side: transformers, torchvision, PIL), so only torch and pandas are needed."""
    import importlib
    import importlib.util
    import sys
    import types

    root = importlib.util.find_spec("geoclip").submodule_search_locations[0]
    for name, path in (("geoclip", root), ("geoclip.model", root + "/model")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [path]
        sys.modules.setdefault(name, pkg)
    return importlib.import_module("geoclip.model.location_encoder")


def main() -> None:
    import torch

    le = _location_encoder_module()

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = le.LocationEncoder().eval()  # loads the wheel's location_encoder_weights.pth
    lon_lat = parity_points()
    lat_lon = torch.from_numpy(lon_lat[:, ::-1].copy())
    with torch.no_grad():
        emb32 = model(lat_lon).numpy()
        emb64 = model.double()(lat_lon.double()).numpy()
    weights = le.file_dir + "/weights/location_encoder_weights.pth"
    with open(weights, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    np.savez_compressed(args.out, lon_lat=lon_lat, embedding=emb32.astype(np.float32),
                        embedding_float64=emb64.astype(np.float32), torch_version=np.array(torch.__version__),
                        geoclip_version=np.array("1.3.0"), weights_sha256=np.array(digest))
    print(f"wrote {args.out}: {emb32.shape}, max |float32 - float64| "
          f"{np.abs(emb32 - emb64).max():.3g}, max |emb| {np.abs(emb64).max():.3g}")


if __name__ == "__main__":
    main()
