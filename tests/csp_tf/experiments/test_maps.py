"""Maps: PNG files of the expected pixel size from a trained cell; the numeric helpers."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

from csp_tf.experiments import maps
from csp_tf.models.loading import ModelLoadError


def test_map_command_writes_pngs_of_the_expected_size(experiment_run, tiny_world, tmp_path, capsys):
    from csp_tf.experiments.map_cli import add_map_parser

    parser = argparse.ArgumentParser()
    add_map_parser(parser.add_subparsers(dest="command"))
    model = os.path.join(experiment_run["out"], "finetune", "csp", "ratio0.5", "seed0")
    out = str(tmp_path / "maps")
    # No --world: found as the parent of the model's data root (the generate --ingest layout).
    args = parser.parse_args(["map", "--model", model, "--out", out, "--classes", "0,1",
                              "--resolution", "2"])
    assert args.func(args) == 0
    class_png = os.path.join(out, "class_maps.png")
    embed_png = os.path.join(out, "embedding_pca.png")
    # Two classes, each with its prediction and true-range panel, under a title strip.
    assert maps.png_size(class_png) == (round(maps.PANEL_W_IN * 2 * maps.DPI),
                                        round((maps.PANEL_H_IN * 2 + maps.TITLE_H_IN) * maps.DPI))
    assert maps.png_size(embed_png) == (round(maps.EMBED_W_IN * maps.DPI),
                                        round(maps.EMBED_H_IN * maps.DPI))
    assert os.path.getsize(class_png) > 20_000 and os.path.getsize(embed_png) > 20_000
    printed = capsys.readouterr().out
    assert "range AUC" in printed and "class_maps.png" in printed
    import json
    summary = json.load(open(os.path.join(out, "maps.json")))
    assert [c["index"] for c in summary["classes"]] == [0, 1]
    assert all(0.0 <= c["range_auc"] <= 1.0 for c in summary["classes"])
    assert summary["world"] == tiny_world["world_dir"]


def test_default_classes_are_one_look_alike_group_and_bad_ones_fail(experiment_run, tiny_world, tmp_path):
    model = os.path.join(experiment_run["out"], "finetune", "sup_grid", "ratio0.5", "seed0")
    world = maps.load_world(tiny_world["world_dir"])
    classes = maps.default_classes(world, tiny_world["num_classes"])
    assert len(set(world["group"][classes])) == 1 and len(classes) >= 2
    with pytest.raises(maps.MapError, match="class indices"):
        maps.render_maps(model, str(tmp_path), classes=[99], resolution=2)
    with pytest.raises(ModelLoadError, match="no Keras model at"):
        maps.render_maps(str(tmp_path), str(tmp_path))


def test_range_auc_and_pca_rgb():
    truth = np.array([0, 0, 1, 1, 0], float)
    land = np.array([1, 1, 1, 1, 0], float)  # the last cell is sea: ignored
    assert maps.range_auc(np.array([0.1, 0.2, 0.8, 0.9, 5.0]), truth, land) == 1.0
    assert maps.range_auc(np.array([0.9, 0.8, 0.2, 0.1, 0.0]), truth, land) == 0.0
    assert maps.range_auc(np.ones(5), truth, land) == 0.5
    assert maps.range_auc(np.ones(5), np.zeros(5), land) is None
    assert maps.range_auc(np.ones(5), np.ones(5), land) is None
    rgb = maps.pca_rgb(np.random.default_rng(0).normal(size=(200, 8)))
    assert rgb.shape == (200, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_range_auc_counts_ties_half():
    # In range: 0.5, 0.9; out of range: 0.1, 0.5, 0.7; the sea cell (99) is ignored.
    # Pairs (in, out) ranked right: 0.5>0.1, 0.5=0.5 (half), 0.9>all three → 4.5 of 6.
    pred = np.array([0.5, 0.9, 0.1, 0.5, 0.7, 99.0])
    truth = np.array([2.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    land = np.array([1, 1, 1, 1, 1, 0])
    assert maps.range_auc(pred, truth, land) == 0.75


def test_png_size_reads_pngs_only(tmp_path):
    from PIL import Image

    Image.new("RGB", (37, 11)).save(tmp_path / "a.png")
    assert maps.png_size(str(tmp_path / "a.png")) == (37, 11)
    Image.new("RGB", (5, 5)).save(tmp_path / "b.jpg")
    (tmp_path / "c.png").write_bytes(b"\x89PNG not really")
    for name in ("b.jpg", "c.png"):
        with pytest.raises(maps.MapError, match=f"{name} is not a PNG file"):
            maps.png_size(str(tmp_path / name))


def test_grid_points_cover_the_globe_row_major():
    lon, lat, pts = maps.grid_points(10)
    assert len(lon) == 36 and len(lat) == 18 and pts.shape == (648, 2)
    assert tuple(pts[1]) == (-165.0, -85.0)  # lon varies fastest
    with pytest.raises(maps.MapError):
        maps.grid_points(7)


def test_embedding_only_for_a_pretraining_stage(experiment_run, tmp_path):
    pre = os.path.join(experiment_run["out"], "pretrain", "csp", "seed0")
    summary = maps.render_maps(pre, str(tmp_path), resolution=5, embedding_only=True)
    assert list(summary["files"]) == ["embedding_pca"] and summary["classes"] == []
    assert sorted(os.listdir(tmp_path)) == ["embedding_pca.png", "maps.json"]


def test_parse_bbox_orders_the_extent_and_names_what_is_wrong():
    assert maps.parse_bbox("5,43,17,48") == (5.0, 17.0, 43.0, 48.0)
    for text, says in [("5,43,17", "four numbers"), ("5,43,x,48", "four numbers"),
                       ("17,43,5,48", "longitudes"), ("170,0,190,10", "dateline"),
                       ("5,48,17,43", "latitudes"), ("5,-95,17,0", "latitudes")]:
        with pytest.raises(maps.MapError, match=says):
            maps.parse_bbox(text)


def test_grid_points_over_a_region_are_its_cell_centres():
    lon, lat, pts = maps.grid_points(0.5, (10.0, 12.0, 40.0, 41.0))
    np.testing.assert_allclose(lon, [10.25, 10.75, 11.25, 11.75])
    np.testing.assert_allclose(lat, [40.25, 40.75])
    assert pts.shape == (8, 2) and tuple(pts[1]) == (10.75, 40.25)
    # A region takes any step (0.07 does not divide its side), within its cell limits; the
    # image covers the whole cells only, not the strip left at the east edge.
    lon, lat, _ = maps.grid_points(0.07, (10.0, 11.0, 40.0, 41.0))
    assert len(lon) == 14
    np.testing.assert_allclose(maps.cells_extent(lon, lat), (10.0, 10.98, 40.0, 40.98))
    np.testing.assert_allclose(maps.cells_extent(*maps.grid_points(2)[:2]), maps.EXTENT)
    for step in (0.6, 1e-4):  # fewer than 2 cells a side; more than MAX_REGION_CELLS
        with pytest.raises(maps.MapError, match="region"):
            maps.grid_points(step, (10.0, 11.0, 40.0, 41.0))


def test_a_region_map_draws_its_own_grid_and_records_the_extent(experiment_run, tiny_world, tmp_path):
    model = os.path.join(experiment_run["out"], "finetune", "csp", "ratio0.5", "seed0")
    world = maps.load_world(tiny_world["world_dir"])
    lon, lat = world["lon"], world["lat"]
    box = (float(lon[2]), float(lon[8]), float(lat[2]), float(lat[6]))
    summary = maps.render_maps(model, str(tmp_path / "region"), classes=[0], resolution=0.25,
                               bbox=box)
    glob = maps.render_maps(model, str(tmp_path / "globe"), classes=[0], resolution=2)
    assert summary["extent"] == {"lon_min": box[0], "lon_max": box[1], "lat_min": box[2],
                                 "lat_max": box[3]}
    assert glob["extent"]["lon_min"] == -180.0 and glob["extent"]["lat_max"] == 90.0
    # Same panels and pixel sizes as the globe's; the range AUC is the world grid's, unchanged.
    for key in ("class_maps", "embedding_pca"):
        assert (summary["files"][key]["width"], summary["files"][key]["height"]) == (
            glob["files"][key]["width"], glob["files"][key]["height"])
    assert summary["classes"][0]["range_auc"] == pytest.approx(glob["classes"][0]["range_auc"])
    # Different pictures: the region's pixels are not the globe's.
    from PIL import Image
    a = np.asarray(Image.open(summary["files"]["embedding_pca"]["path"]).convert("RGB"))
    b = np.asarray(Image.open(glob["files"]["embedding_pca"]["path"]).convert("RGB"))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_map_command_rejects_a_bad_bbox_before_loading_the_model(tmp_path):
    from csp_tf.cli import CLIError
    from csp_tf.experiments.map_cli import add_map_parser

    parser = argparse.ArgumentParser()
    add_map_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["map", "--model", str(tmp_path / "missing"), "--out",
                              str(tmp_path / "m"), "--bbox", "17,43,5,48"])
    with pytest.raises(CLIError, match="longitudes"):
        args.func(args)
    args = parser.parse_args(["map", "--model", str(tmp_path / "missing"), "--out",
                              str(tmp_path / "m"), "--bbox", "5,43,17,48", "--resolution", "10"])
    with pytest.raises(CLIError, match="region"):
        args.func(args)


def test_class_maps_count_and_draw_the_labeled_points_in_view(monkeypatch, tmp_path):
    titles, scatters = [], []

    class Axes:
        def scatter(self, x, y, s, **kw):
            scatters.append((np.asarray(x), s))

    def fake_map(fig, position, image, title, coast, **kw):
        titles.append(title)
        return Axes()

    monkeypatch.setattr(maps, "_map", fake_map)
    monkeypatch.setattr(maps, "_land_mask", lambda extent=maps.EXTENT: None)
    box = (0.0, 10.0, 0.0, 10.0)
    lon, lat, _ = maps.grid_points(1.0, box)
    inside = np.tile([[5.0, 5.0]], (maps.CROWDED_POINTS + 1, 1))
    lon_lat = np.concatenate([inside, [[50.0, 5.0], [5.0, -30.0], [6.0, 6.0]]])
    labels = np.array([0] * (len(inside) + 2) + [1])
    points = {"lon_lat": lon_lat, "label": labels}
    probs = np.full((len(lon) * len(lat), 2), 0.5)
    maps.draw_class_maps(str(tmp_path / "c.png"), [0, 1], ["a", "b"], probs, lon, lat, None,
                         points, "t", extent=box)
    assert titles[0].endswith(f"{maps.CROWDED_POINTS + 1} labeled pts in view")
    assert titles[1].endswith("1 labeled pts in view")
    # The two class-0 points outside the box are not drawn; crowded points are small dots.
    assert len(scatters[0][0]) == maps.CROWDED_POINTS + 1 and scatters[0][1] == 2
    assert len(scatters[1][0]) == 1 and scatters[1][1] == 9
