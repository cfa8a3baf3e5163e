"""``location_encoder.capacity``: the finest scale and fine-tuning length from the labeled places."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf import capacity
from csp_tf.configs import ConfigError, ExperimentConfig, get_preset
from csp_tf.experiments.methods import config_fingerprint


def _equator(step_deg: float, n: int = 50) -> np.ndarray:
    return np.stack([np.arange(n) * step_deg, np.zeros(n)], axis=1)


def test_spacing_is_the_median_nearest_neighbour_distance_in_degrees():
    assert capacity.labeled_spacing_deg(_equator(1.0)) == pytest.approx(1.0, rel=1e-6)
    # across the antimeridian: 179.5° and -179.5° are 1° apart, not 359°
    pts = np.array([[179.5, 10.0], [-179.5, 10.0], [0.0, 0.0], [0.0, 1.0]])
    cos10 = np.degrees(np.arccos(np.sin(np.radians(10)) ** 2
                                 + np.cos(np.radians(10)) ** 2 * np.cos(np.radians(1.0))))
    assert capacity.labeled_spacing_deg(pts) == pytest.approx((cos10 + 1.0) / 2, rel=1e-6)


def test_spacing_skips_missing_locations_and_needs_two_places():
    pts = np.vstack([_equator(0.5, 3), [[np.nan, np.nan]]])
    assert capacity.labeled_spacing_deg(pts) == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 labeled places"):
        capacity.labeled_spacing_deg(np.array([[1.0, 2.0], [np.nan, np.nan]]))


@pytest.mark.parametrize("value, snapped", [(0.9, 1.0), (0.19, 0.25), (0.41, 0.5), (50.0, 2.0),
                                            (1e-4, 0.02), (0.0, 0.02)])
def test_snap_scale_is_nearest_on_a_log_scale(value, snapped):
    assert capacity.snap_scale(value) == snapped


@pytest.mark.parametrize("spacing, scale", [(0.5987, 2.0), (0.2237, 1.0), (0.0486, 0.25)])
def test_rule_reproduces_the_val_picks_on_places_countries(spacing, scale):
    """The median spacings of the 1 / 5 / 100 % subsets of `places` and the scales val picked."""
    out = capacity.auto_capacity(spacing, epochs=10)
    assert out == {"location_encoder.position.min_radius": scale,
                   "location_encoder.hidden_dim": 512, "location_encoder.dropout": 0.0,
                   "location_encoder.fcnet_dropout": 0.0,
                   "finetune.epochs": capacity.MIN_EPOCHS, "finetune.min_steps": 750}


def test_rule_never_lowers_epochs_or_width_and_leaves_no_location_model_alone():
    assert capacity.auto_capacity(0.1, epochs=80)["finetune.epochs"] == 80
    assert capacity.auto_capacity(0.1, epochs=8, hidden_dim=1024)["location_encoder.hidden_dim"] == 1024
    assert capacity.auto_capacity(0.1, epochs=0, keep_encoder=True) == {}
    assert capacity.auto_capacity(0.1, epochs=5, keep_encoder=True) == {
        "finetune.epochs": capacity.MIN_EPOCHS, "finetune.min_steps": capacity.MIN_STEPS}


def test_fixed_leaves_the_config_as_written():
    cfg = get_preset("places")
    assert capacity.resolve_capacity(cfg, _equator(0.01)) is cfg


def test_auto_sets_scale_and_epochs_from_the_labeled_places():
    cfg = get_preset("places").override({"location_encoder.capacity": "auto"})
    dense = capacity.resolve_capacity(cfg, _equator(0.05))    # 4 × 0.05° → 0.25°
    sparse = capacity.resolve_capacity(cfg, _equator(0.5))    # 4 × 0.5° → 2°
    assert dense.location_encoder.position.min_radius == 0.25
    assert sparse.location_encoder.position.min_radius == 2.0
    assert dense.finetune.epochs == sparse.finetune.epochs == capacity.MIN_EPOCHS
    assert cfg.finetune.min_steps == 1500 and dense.finetune.min_steps == capacity.MIN_STEPS
    assert cfg.location_encoder.position.min_radius == 1.0  # the input is not changed
    kept = capacity.resolve_capacity(cfg, _equator(0.05), keep_encoder=True)
    assert kept.location_encoder.position.min_radius == 1.0
    assert kept.finetune.epochs == capacity.MIN_EPOCHS


def test_auto_widens_and_drops_dropout_unless_the_encoder_is_kept():
    demo = get_preset("demo").override({"location_encoder.capacity": "auto"})
    assert (demo.location_encoder.hidden_dim, demo.location_encoder.dropout) == (256, 0.5)
    out = capacity.resolve_capacity(demo, _equator(0.25))
    le = out.location_encoder
    assert (le.hidden_dim, le.dropout, le.fcnet_dropout, le.position.min_radius) == (512, 0.0, 0.0, 1.0)
    kept = capacity.resolve_capacity(demo, None, keep_encoder=True).location_encoder
    assert (kept.hidden_dim, kept.dropout, kept.position.min_radius) == (256, 0.5, 0.1)


def test_auto_leaves_radian_scaled_encoders_alone():
    cfg = get_preset("places").override({"location_encoder.capacity": "auto",
                                         "location_encoder.position.type": "sphereM+",
                                         "location_encoder.position.min_radius": 0.001})
    out = capacity.resolve_capacity(cfg, None)  # no spacing is measured
    assert out.location_encoder.position.min_radius == 0.001
    assert out.location_encoder.dropout == 0.0
    assert out.finetune.epochs == capacity.MIN_EPOCHS


def test_capacity_is_validated_and_left_out_of_the_fingerprint():
    with pytest.raises(ConfigError, match="location_encoder.capacity='big' is not one of fixed, auto"):
        ExperimentConfig().override({"location_encoder.capacity": "big"}).validate()
    fixed = get_preset("places")
    auto = fixed.override({"location_encoder.capacity": "auto"})
    # the fields auto resolves to decide a result; the mode alone does not (old runs keep
    # their fingerprints)
    assert config_fingerprint(auto) == config_fingerprint(fixed)
    assert "capacity" not in fixed.location_encoder.model_fields()
    assert ExperimentConfig.from_dict(auto.to_dict()).location_encoder.capacity == "auto"


def test_kept_encoder_needs_no_locations():
    """The TFX pipeline always fine-tunes from its pre-trained encoder: no spacing to measure."""
    cfg = get_preset("places").override({"location_encoder.capacity": "auto"})
    out = capacity.resolve_capacity(cfg, None, keep_encoder=True)
    assert out.location_encoder.position.min_radius == 1.0
    assert out.finetune.epochs == capacity.MIN_EPOCHS
    with pytest.raises(ValueError):
        capacity.labeled_spacing_deg(np.zeros((0, 2)))


def test_auto_jitters_cell_encoders_by_their_spacing_unless_a_jitter_is_set():
    cfg = get_preset("places").override({"location_encoder.capacity": "auto",
                                         "location_encoder.position.type": "gridcell_hash"})
    out = capacity.resolve_capacity(cfg, _equator(0.05))
    assert out.finetune.location_jitter_per_spacing == capacity.JITTER_PER_SPACING
    assert "location_jitter_per_spacing=1" in capacity.describe(out)
    kept = capacity.resolve_capacity(cfg, None, keep_encoder=True)  # a pre-trained cell encoder
    assert kept.finetune.location_jitter_per_spacing == capacity.JITTER_PER_SPACING
    for key, value in (("location_jitter", 0.03), ("location_jitter_per_spacing", 0.5)):
        asked = cfg.override({f"finetune.{key}": value})
        resolved = capacity.resolve_capacity(asked, _equator(0.05)).finetune
        assert (resolved.location_jitter, resolved.location_jitter_per_spacing) == (
            asked.finetune.location_jitter, asked.finetune.location_jitter_per_spacing)
    smooth = get_preset("places").override({"location_encoder.capacity": "auto"})
    assert capacity.resolve_capacity(smooth, _equator(0.05)).finetune.location_jitter_per_spacing == 0
