"""Offline PNG maps of a trained location encoder (no map tiles, no network access).

* ``class_maps.png``: one row per chosen class: the predicted P(y|loc) = σ(W_c e(x)) over a
  global lon/lat grid, beside the generated world's true range density (``true_ranges.npz``),
  with the class's labeled training points of the model's label ratio as dots.
* ``embedding_pca.png``: the location embedding e(x) over the globe, its first three principal
  components scaled to [0, 1] and shown as RGB: regions the encoder treats alike share a colour.
* ``maps.json``: per class, the *range AUC*: the probability that a land cell inside the true
  range gets a higher P(y|loc) than a land cell outside it (1 = perfect ranking, 0.5 = chance),
  on the world's own grid; plus the files, their pixel sizes and the extent drawn.

A region (``bbox``: lon/lat bounds) draws the same panels over that box only, on a grid as fine
as ``resolution``: structure finer than the globe's 1° grid (trainable cells, a coast) shows
there. Coastlines are the 0.5 contour of ``global_land_mask`` on a 0.5° grid over the globe, on
a grid of about ``COAST_CELLS`` cells across a region. Pixel sizes are fixed by
the figure size and dpi (no tight bounding box), so they are known in advance.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

DPI = 100
PANEL_W_IN, PANEL_H_IN = 5.6, 3.0
EMBED_W_IN, EMBED_H_IN = 10.0, 5.4
TITLE_H_IN = 0.8
COAST_DEG = 0.5
EXTENT = (-180.0, 180.0, -90.0, 90.0)  # lon min, lon max, lat min, lat max (matplotlib's order)
Extent = Tuple[float, float, float, float]
COAST_CELLS = 400  # coastline grid cells across a region's longer side
CROWDED_POINTS = 2_000  # labeled points in one panel above which they are drawn as small dots
MAX_REGION_CELLS = 4_000_000  # grid cells a region may ask for (the model runs on each)


def _is_globe(extent: Extent) -> bool:
    return tuple(extent) == EXTENT


class MapError(ValueError):
    """A bad --model / --world / --classes; the message says which and why."""


def parse_bbox(text: str) -> Extent:
    """``"LON_MIN,LAT_MIN,LON_MAX,LAT_MAX"`` (degrees) → an extent (lon min, lon max, lat min,
    lat max); MapError naming what is wrong. A box may not cross the dateline."""
    try:
        lon0, lat0, lon1, lat1 = (float(v) for v in text.split(","))
    except ValueError:
        raise MapError(f"--bbox {text!r}: expected four numbers LON_MIN,LAT_MIN,LON_MAX,LAT_MAX "
                       "(degrees)") from None
    if not (-180.0 <= lon0 < lon1 <= 180.0):
        raise MapError(f"--bbox {text!r}: longitudes must satisfy -180 <= LON_MIN < LON_MAX <= 180 "
                       "(a box across the dateline is not supported)")
    if not (-90.0 <= lat0 < lat1 <= 90.0):
        raise MapError(f"--bbox {text!r}: latitudes must satisfy -90 <= LAT_MIN < LAT_MAX <= 90")
    return (lon0, lon1, lat0, lat1)


def grid_points(resolution: float, extent: Extent = EXTENT
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres: lon (n_lon,), lat (n_lat,), and (n_lat·n_lon, 2) lon/lat rows (row-major).
    The globe needs a step that divides 180° in [0.05, 10]; a region any step that gives it
    at least 2 cells a side and at most ``MAX_REGION_CELLS`` cells."""
    lon0, lon1, lat0, lat1 = extent
    if _is_globe(extent):
        if not 0.05 <= resolution <= 10 or (180.0 / resolution) % 1:
            raise MapError(f"--resolution {resolution}: must divide 180 and lie in [0.05, 10] degrees")
    else:
        n_lon, n_lat = (lon1 - lon0) / resolution, (lat1 - lat0) / resolution
        if not resolution > 0 or min(n_lon, n_lat) < 2 or n_lon * n_lat > MAX_REGION_CELLS:
            raise MapError(f"--resolution {resolution}: the region {lon1 - lon0:g}° × "
                           f"{lat1 - lat0:g}° needs a step giving 2 to {MAX_REGION_CELLS} cells "
                           "(at least 2 a side)")
    lon = np.arange(lon0 + resolution / 2, lon1, resolution)
    lat = np.arange(lat0 + resolution / 2, lat1, resolution)
    lon2d, lat2d = np.meshgrid(lon, lat)
    return lon, lat, np.stack([lon2d.ravel(), lat2d.ravel()], axis=1).astype(np.float32)


def predict_grid(model, lon_lat: np.ndarray, batch_size: int = 8192) -> Tuple[np.ndarray, np.ndarray]:
    """P(y|loc) (N, C) and the embedding (N, D) in eval mode (no dropout)."""
    import tensorflow as tf

    fn = tf.function(lambda x: (model.location_probs(x), model.location_embedding(x)))
    probs, emb = [], []
    for i in range(0, len(lon_lat), batch_size):
        p, e = fn(tf.constant(lon_lat[i:i + batch_size]))
        probs.append(p.numpy())
        emb.append(e.numpy())
    return np.concatenate(probs), np.concatenate(emb)


def pca_rgb(embedding: np.ndarray) -> np.ndarray:
    """(N, D) → (N, 3) in [0, 1]: the top-3 principal components, each clipped to its 1st–99th
    percentile and rescaled (fewer than 3 components are padded with 0.5)."""
    x = np.asarray(embedding, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = x @ vt[:3].T
    out = np.full((len(x), 3), 0.5)
    for j in range(comps.shape[1]):
        lo, hi = np.percentile(comps[:, j], [1, 99])
        out[:, j] = np.clip((comps[:, j] - lo) / (hi - lo), 0, 1) if hi > lo else 0.5
    return out


def range_auc(pred: np.ndarray, true_density: np.ndarray, land: np.ndarray) -> Optional[float]:
    """AUC of ``pred`` separating in-range land cells (density > 0) from out-of-range land
    cells (ties count half); None if either set is empty."""
    from sklearn.metrics import roc_auc_score

    on_land = land > 0
    in_range = true_density[on_land] > 0
    if in_range.all() or not in_range.any():
        return None
    return float(roc_auc_score(in_range, pred[on_land]))


def png_size(path: str) -> Tuple[int, int]:
    """(width, height) of a PNG file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                return image.size
    except UnidentifiedImageError:
        pass
    raise MapError(f"{path} is not a PNG file")


def load_world(world_dir: str) -> Dict[str, np.ndarray]:
    path = os.path.join(world_dir, "true_ranges.npz")
    if not os.path.exists(path):
        raise MapError(f"--world {world_dir!r} has no true_ranges.npz (a `csp-tf generate` dir)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def find_world_dir(data_root: str) -> Optional[str]:
    """``generate --ingest`` writes the data root as WORLD/data: look there and in the root."""
    for d in (os.path.dirname(os.path.normpath(data_root)), data_root):
        if d and os.path.exists(os.path.join(d, "true_ranges.npz")):
            return d
    return None


def default_classes(world: Optional[Dict[str, np.ndarray]], num_classes: int,
                    max_classes: int = 4) -> List[int]:
    """The look-alike group of class 0 (image features barely tell its members apart, so the
    location prior must), else the first three classes."""
    if world is None or "group" not in world:
        return list(range(min(3, num_classes)))
    group = np.asarray(world["group"])
    return [int(i) for i in np.flatnonzero(group == group[0])][:max_classes]


def cells_extent(lon: np.ndarray, lat: np.ndarray) -> Extent:
    """What a grid of cell centres (``grid_points``: at least 2 a side) covers; a step that does
    not divide a region's sides leaves a strip of less than one cell undrawn at its east and
    north edges."""
    half_lon, half_lat = (lon[1] - lon[0]) / 2, (lat[1] - lat[0]) / 2
    return (float(lon[0] - half_lon), float(lon[-1] + half_lon),
            float(lat[0] - half_lat), float(lat[-1] + half_lat))


@functools.lru_cache(maxsize=4)  # the class and embedding maps share one mask (read only)
def _land_mask(extent: Extent = EXTENT) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    from global_land_mask import globe

    if _is_globe(extent):
        lon, lat, _ = grid_points(COAST_DEG)
    else:
        step = min(COAST_DEG, max(extent[1] - extent[0], extent[3] - extent[2]) / COAST_CELLS)
        lon, lat, _ = grid_points(step, extent)
    lon2d, lat2d = np.meshgrid(lon, lat)
    return lon, lat, globe.is_land(lat2d, lon2d).astype(float)


def _map(fig, position: Tuple[int, int, int], image: np.ndarray, title: str, coast,
         colorbar: bool = True, view: Extent = EXTENT, image_extent: Optional[Extent] = None,
         **imshow: Any):
    """One panel: ``image`` (covering ``image_extent``, default ``view``) shown over ``view``
    with coastlines (``_land_mask``), title, colour bar."""
    ax = fig.add_subplot(*position)
    im = ax.imshow(image, extent=image_extent or view, origin="lower", aspect="auto",
                   interpolation="nearest", **imshow)
    ax.contour(*coast, levels=[0.5], colors="k", linewidths=0.4)
    ax.set_xlim(view[0], view[1])
    ax.set_ylim(view[2], view[3])
    if _is_globe(view):
        ax.set_xticks(range(-180, 181, 60))
        ax.set_yticks(range(-90, 91, 45))
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).ax.tick_params(labelsize=6)
    return ax


def _model_context(model_dir: str):
    """(config or None, data root or None) saved beside the model."""
    from csp_tf.configs import ExperimentConfig

    path = os.path.join(model_dir, "config.yaml")
    if not os.path.exists(path):
        return None, None
    cfg = ExperimentConfig.load(path)
    root = cfg.data.data_root or None
    return cfg, root if root and os.path.exists(os.path.join(root, "metadata.json")) else None


def _class_names(world, data_root, n: int) -> List[str]:
    if world is not None and "class_names" in world:
        return [str(s) for s in world["class_names"]]
    if data_root and os.path.exists(os.path.join(data_root, "labels.txt")):
        with open(os.path.join(data_root, "labels.txt")) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == n:
            return names
    return [f"class {i}" for i in range(n)]


def _train_points(cfg, data_root) -> Optional[Dict[str, np.ndarray]]:
    if cfg is None or data_root is None:
        return None
    from csp_tf.data.reader import load_split_arrays

    ratio = cfg.finetune.label_ratio
    return load_split_arrays(data_root, "train", label_ratio=ratio if ratio < 1 else None)


def draw_class_maps(path: str, classes: Sequence[int], names: Sequence[str], probs: np.ndarray,
                    lon: np.ndarray, lat: np.ndarray, world: Optional[Dict[str, np.ndarray]],
                    points: Optional[Dict[str, np.ndarray]], subtitle: str,
                    extent: Extent = EXTENT) -> None:
    """Rows = classes; columns = predicted P(y|loc) [, true range density]; ``probs`` on the
    grid of ``lon``/``lat`` over ``extent``, the true range on the world's global grid."""
    from matplotlib.figure import Figure

    ncols = 2 if world is not None else 1
    fig = Figure(figsize=(PANEL_W_IN * ncols, PANEL_H_IN * len(classes) + TITLE_H_IN), dpi=DPI)
    fig.subplots_adjust(left=0.05, right=0.97, bottom=0.3 / fig.get_figheight(),
                        top=1 - TITLE_H_IN / fig.get_figheight(),
                        hspace=0.35, wspace=0.12)
    fig.suptitle(subtitle, fontsize=9)
    coast = _land_mask(extent)
    shape = (len(lat), len(lon))
    regional = not _is_globe(extent)
    in_view = True
    if points is not None:
        xy = points["lon_lat"]
        in_view = ((xy[:, 0] >= extent[0]) & (xy[:, 0] <= extent[1])
                   & (xy[:, 1] >= extent[2]) & (xy[:, 1] <= extent[3]))
    for row, c in enumerate(classes):
        grid = probs[:, c].reshape(shape)
        sel = (points["label"] == c) & in_view if points is not None else None
        ax = _map(fig, (len(classes), ncols, row * ncols + 1), grid,
                  f"{names[c]}: predicted P(y|loc)"
                  + (f", {int(sel.sum())} labeled pts" + (" in view" if regional else "")
                     if sel is not None else ""), coast,
                  cmap="viridis", vmin=0.0, vmax=max(float(grid.max()), 1e-6), view=extent,
                  image_extent=cells_extent(lon, lat))
        if sel is not None:  # small dots where they crowd, so the prediction stays visible
            crowded = sel.sum() > CROWDED_POINTS
            ax.scatter(points["lon_lat"][sel, 0], points["lon_lat"][sel, 1], s=2 if crowded else 9,
                       c="red", edgecolors="white", linewidths=0 if crowded else 0.4)
        if world is not None:
            dens = world["range_density"][c]
            _map(fig, (len(classes), ncols, row * ncols + 2), dens / max(float(dens.max()), 1e-12),
                 f"{names[c]}: true range (relative density)", coast, cmap="magma", vmin=0, vmax=1,
                 view=extent, image_extent=EXTENT)
    fig.savefig(path, dpi=DPI)


def draw_embedding_map(path: str, emb: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                       subtitle: str, extent: Extent = EXTENT) -> None:
    """The location embedding's first three principal components (of the points drawn) as RGB
    over ``extent``."""
    from matplotlib.figure import Figure

    rgb = pca_rgb(emb).reshape(len(lat), len(lon), 3)
    fig = Figure(figsize=(EMBED_W_IN, EMBED_H_IN), dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.07, top=0.9)
    _map(fig, (1, 1, 1), rgb, f"location embedding, PCA → RGB ({emb.shape[1]}-d)\n{subtitle}",
         _land_mask(extent), colorbar=False, view=extent, image_extent=cells_extent(lon, lat))
    fig.savefig(path, dpi=DPI)


def render_maps(model_dir: str, out_dir: str, classes: Optional[Sequence[int]] = None,
                world_dir: Optional[str] = None, resolution: float = 1.0,
                embedding_only: bool = False, bbox: Optional[Extent] = None) -> Dict[str, Any]:
    """Writes class_maps.png, embedding_pca.png and maps.json into ``out_dir``; returns the
    summary (also in maps.json): files with pixel sizes, and per class its range AUC (on the
    world's global grid, whatever ``bbox`` draws). ``bbox``: a region (``parse_bbox``), else
    the globe.
    ``embedding_only``: just embedding_pca.png (e.g. for a pre-training stage, whose class
    head was never trained)."""
    from csp_tf.models.loading import load_csp_model

    extent = tuple(bbox) if bbox is not None else EXTENT
    lon, lat, pts = grid_points(resolution, extent)  # a bad grid fails before the model loads
    model = load_csp_model(model_dir)
    cfg, data_root = _model_context(model_dir)
    if world_dir is None and data_root is not None:
        world_dir = find_world_dir(data_root)
    world = load_world(world_dir) if world_dir else None
    n = int(model.num_classes)
    if world is not None and world["range_density"].shape[0] != n:
        raise MapError(f"--world {world_dir!r} has {world['range_density'].shape[0]} species but "
                       f"the model has {n} classes: not the world this model was trained on")
    classes = list(classes) if classes is not None else default_classes(world, n)
    bad = [c for c in classes if not 0 <= c < n]
    if bad:
        raise MapError(f"--classes {bad}: class indices must lie in [0, {n})")
    names = _class_names(world, data_root, n)
    os.makedirs(out_dir, exist_ok=True)

    probs, emb = predict_grid(model, pts)
    subtitle = _describe(cfg, model_dir, with_ratio=not embedding_only)
    embed_path = os.path.join(out_dir, "embedding_pca.png")
    draw_embedding_map(embed_path, emb, lon, lat, subtitle, extent)
    paths = [("embedding_pca", embed_path)]
    if embedding_only:
        classes = []
    else:
        class_path = os.path.join(out_dir, "class_maps.png")
        draw_class_maps(class_path, classes, names, probs, lon, lat, world,
                        _train_points(cfg, data_root), subtitle, extent)
        paths.insert(0, ("class_maps", class_path))

    per_class = []
    if world is not None and classes:  # score on the world's own grid, where the truth lives
        wlon2d, wlat2d = np.meshgrid(world["lon"], world["lat"])
        wpts = np.stack([wlon2d.ravel(), wlat2d.ravel()], axis=1).astype(np.float32)
        wprobs, _ = predict_grid(model, wpts)
        land = world["land_fraction"].ravel()
    for c in classes:
        entry: Dict[str, Any] = {"index": int(c), "name": names[c], "range_auc": None}
        if world is not None:
            entry["range_auc"] = range_auc(wprobs[:, c], world["range_density"][c].ravel(), land)
        per_class.append(entry)
    files = {key: {"path": path, **dict(zip(("width", "height"), png_size(path))),
                   "bytes": os.path.getsize(path)} for key, path in paths}
    summary = {"model": model_dir, "world": world_dir, "resolution_deg": resolution,
               "extent": {"lon_min": extent[0], "lon_max": extent[1], "lat_min": extent[2],
                          "lat_max": extent[3]},
               "classes": per_class, "files": files}
    with open(os.path.join(out_dir, "maps.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _describe(cfg, model_dir: str, with_ratio: bool = True) -> str:
    if cfg is None:
        return os.path.basename(os.path.normpath(model_dir))
    le = cfg.location_encoder
    ratio = f"label ratio {cfg.finetune.label_ratio:g}, " if with_ratio else ""
    radius = getattr(le.position.options, "min_radius", None)
    return (f"{le.position.type}+{le.resolved_network()}"
            + (f" (min_radius {radius:g})" if radius is not None else "") + ", "
            f"pre-training {cfg.pretrain.loss}, {ratio}seed {cfg.runtime.seed}")
