"""TFLite export: the fp32 file equals the SavedModel's ``location_prior`` and
``location_embedding`` signatures within FP32_TOLERANCE on points it was not checked on; the
quantised files agree on top-1; weights are perturbed away from their initial values first, so
a file that lost them cannot pass; the place memory is left out and says so; the CLI."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import csp_cli as cli
from csp_tf.coords import CoordinateError
from csp_tf.export import export_saved_model
from csp_tf.export_tflite import (FP32_TOLERANCE, SIDECAR, TFLiteExportError, TFLiteLocationModel,
                                  export_tflite, file_name, memory_conversion_error,
                                  top1_agreement)
from csp_tf.models import build_csp_model

# The quantised files' top-1 agreement with the SavedModel, at least (the tiny model's measured
# values are printed by -s and recorded in the JSON).
MIN_TOP1 = {"int8": 0.95, "fp16": 0.99}
LABELS = ["oak", "pine", "fern", "moss"]


def perturb_weights(model, seed: int, scale: float = 0.3) -> None:
    """Seeded noise on every variable: a file built from the initial (seeded) weights no longer
    matches."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if v.path.startswith("place_memory"):
            continue  # places and labels are data, set below
        x = v.numpy()
        v.assign(x + rng.normal(scale=scale, size=x.shape).astype(x.dtype))


def parity_points() -> np.ndarray:
    """Points the export did not check itself on: another seed, lat uniform in degrees (denser
    near the poles than the export's), and whole/half-degree values."""
    rng = np.random.default_rng(99)
    ll = np.c_[rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500)]
    edges = [[-180, 90], [180, -90], [-0.5, -0.5], [90.5, 44.5], [-179.25, 0.75], [33, -12]]
    return np.concatenate([ll, edges]).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from csp_tf.configs import get_preset

    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 8
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    model = build_csp_model(cfg)
    perturb_weights(model, seed=11)
    base = tmp_path_factory.mktemp("tflite")
    saved = tf.saved_model.load(
        export_saved_model(model, str(base / "sm"), version=1, warmup=False))
    sidecar = export_tflite(model, str(base / "lite"), class_names=LABELS)
    return cfg, model, saved, sidecar, base / "lite"


def _want(saved, points):
    ll = tf.constant(points)
    return (saved.signatures["location_prior"](lon_lat=ll)["probabilities"].numpy(),
            saved.signatures["location_embedding"](lon_lat=ll)["embedding"].numpy())


def test_the_files_hold_the_perturbed_weights_not_the_initial_ones(exported):
    """Guards the test itself: a fresh model answers differently from the fp32 file."""
    cfg, _, _, _, out = exported
    fresh = build_csp_model(cfg)
    lite = TFLiteLocationModel(str(out / file_name("fp32")))
    pts = parity_points()
    assert np.abs(lite.prior(pts) - fresh.location_probs(pts).numpy()).max() > 1e-2
    assert np.abs(lite.embedding(pts) - fresh.location_embedding(pts).numpy()).max() > 1e-2


def test_fp32_equals_the_savedmodel_signatures(exported):
    _, _, saved, _, out = exported
    pts = parity_points()
    want_prior, want_emb = _want(saved, pts)
    lite = TFLiteLocationModel(str(out / file_name("fp32")))
    np.testing.assert_allclose(lite.prior(pts), want_prior, atol=FP32_TOLERANCE, rtol=0)
    scale = max(1.0, float(np.abs(want_emb).max()))
    np.testing.assert_allclose(lite.embedding(pts), want_emb, atol=FP32_TOLERANCE * scale, rtol=0)
    assert lite.prior(pts[:1]).shape == (1, 4)  # batch 1 resizes the same file


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_quantised_files_agree_on_top1_and_store_smaller_weights(exported, precision):
    _, _, saved, sidecar, out = exported
    pts = parity_points()
    want_prior, want_emb = _want(saved, pts)
    lite = TFLiteLocationModel(str(out / file_name(precision)))
    got = lite.prior(pts)
    agreement = top1_agreement(got, want_prior)
    max_diff = float(np.abs(got - want_prior).max())
    print(f"{precision}: top-1 agreement {agreement:.4f}, P(y|loc) max |diff| {max_diff:.2e}")
    assert agreement >= MIN_TOP1[precision], (agreement, max_diff)
    assert 0 < max_diff < 0.1  # quantised (not the fp32 file), yet close
    stored = {"int8": "int8", "fp16": "float16"}[precision]
    assert stored in lite.weight_types() and stored not in TFLiteLocationModel(
        str(out / file_name("fp32"))).weight_types()
    assert sidecar["files"][precision]["bytes"] < sidecar["files"]["fp32"]["bytes"]


def test_sidecar_states_labels_names_precision_tolerances_and_no_memory(exported):
    _, _, _, sidecar, out = exported
    on_disk = json.load(open(out / SIDECAR))
    assert on_disk == sidecar
    assert on_disk["labels"] == LABELS
    assert set(on_disk["signatures"]) == {"location_prior", "location_embedding"}
    assert list(on_disk["signatures"]["location_prior"]["outputs"]) == ["probabilities"]
    assert set(on_disk["files"]) == {"fp32", "int8", "fp16"}
    assert on_disk["files"]["fp32"]["measured"]["prior_max_abs_diff"] <= FP32_TOLERANCE
    assert on_disk["tolerance"]["fp32"]["tested"] == FP32_TOLERANCE
    assert on_disk["place_memory"]["included"] is False
    assert on_disk["place_memory"]["model_has_one"] is False
    # The file's own signature names are the ones the JSON lists.
    lite = TFLiteLocationModel(str(out / file_name("int8")))
    sigs = lite.interpreter.get_signature_list()
    assert sigs["location_prior"] == {"inputs": ["lon_lat"], "outputs": ["probabilities"]}
    assert sigs["location_embedding"] == {"inputs": ["lon_lat"], "outputs": ["embedding"]}


def test_runner_checks_coordinates_as_the_savedmodel_does(exported):
    out = exported[4]
    lite = TFLiteLocationModel(str(out / file_name("fp32")))
    with pytest.raises(CoordinateError, match="latitude"):
        lite.prior([[10.0, 95.0]])
    with pytest.raises(CoordinateError, match="longitude"):
        lite.embedding([[np.nan, 0.0]])


def test_existing_files_and_bad_precisions_are_refused(exported, tmp_path):
    _, model, _, _, out = exported
    with pytest.raises(TFLiteExportError, match="already holds"):
        export_tflite(model, str(out), precisions=["fp32"])
    with pytest.raises(TFLiteExportError, match="int4"):
        export_tflite(model, str(tmp_path / "x"), precisions=["int4"])
    assert not os.path.exists(tmp_path / "x")


def test_sigmoid_head_fp32_matches(tmp_path):
    from csp_tf.configs import get_preset

    cfg = get_preset("demo_reference")  # per-class sigmoids (presence loss)
    cfg.data.num_classes, cfg.data.feature_dim = 6, 4
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    model = build_csp_model(cfg)
    assert model.location_head == "sigmoid"
    perturb_weights(model, seed=5, scale=0.1)
    export_tflite(model, str(tmp_path), precisions=["fp32"])
    pts = parity_points()
    got = TFLiteLocationModel(str(tmp_path / file_name("fp32"))).prior(pts)
    np.testing.assert_allclose(got, model.location_probs(pts).numpy(), atol=FP32_TOLERANCE, rtol=0)


def test_other_position_encoders_are_refused_by_name(tmp_path):
    from csp_tf.configs import get_preset

    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 3, 4
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 16, 8
    cfg.location_encoder.position.type = "theory"
    with pytest.raises(TFLiteExportError, match="'theory'"):
        export_tflite(build_csp_model(cfg), str(tmp_path), precisions=["fp32"])


def test_place_memory_is_left_out_and_said_so(tmp_path, capsys):
    """A model with an active memory: the converter refuses the memory with builtin ops; the
    file answers the network's prior (not the SavedModel's mixed one) and every output says so."""
    from csp_tf.configs import get_preset

    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 4
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 16, 8
    model = build_csp_model(cfg, place_memory_size=40)
    perturb_weights(model, seed=3)
    rng = np.random.default_rng(4)
    places = np.c_[rng.uniform(-170, 170, 40), rng.uniform(-80, 80, 40)]
    model.place_memory.set_places(places, rng.integers(0, 4, 40))
    model.place_memory.set_params(5, 1.0, 0.5)
    assert memory_conversion_error(model)  # the evidence for leaving it out

    stage = tmp_path / "stage"
    stage.mkdir()
    model.save(str(stage / "model.keras"))
    cfg.save(str(stage / "config.yaml"))
    assert cli.main(["export", "--format", "tflite", "--model", str(stage), "--out",
                     str(tmp_path / "lite"), "--precision", "fp32"]) == 0
    printed = capsys.readouterr().out
    assert "place memory" in printed and "NOT included" in printed and "40 places" in printed
    sidecar = json.load(open(tmp_path / "lite" / SIDECAR))
    assert sidecar["place_memory"] | {"note": None} == {
        "included": False, "model_has_one": True, "active_in_the_model": True, "places": 40,
        "note": None, "why": sidecar["place_memory"]["why"],
        "converter_with_builtin_ops": "refused"}
    assert "NOT included" in sidecar["place_memory"]["note"]
    assert set(sidecar["files"]) == {"fp32"}

    near = (places[:8] + 0.01).astype(np.float32)  # beside labeled places: the votes count there
    lite = TFLiteLocationModel(str(tmp_path / "lite" / file_name("fp32")))
    np.testing.assert_allclose(lite.prior(near), model.location_probs(near, memory=False).numpy(),
                               atol=FP32_TOLERANCE, rtol=0)
    assert np.abs(lite.prior(near) - model.location_probs(near).numpy()).max() > 0.05


def test_cli_needs_the_target_of_its_format(tmp_path, capsys):
    assert cli.main(["export", "--format", "tflite", "--model", str(tmp_path)]) == 2
    assert "--format tflite needs --out" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(tmp_path)]) == 2
    assert "--format savedmodel needs --export-base" in capsys.readouterr().err
