"""csp_tf.train.base_encoder: which saved encoders a run's config may start from."""

from __future__ import annotations

from csp_tf.configs import LocationEncoderConfig, get_preset
from csp_tf.encoders.base import geometric_frequencies
from csp_tf.train.base_encoder import resolved_fields


def _gridcell(min_radius: float = 0.1, listed: bool = False) -> LocationEncoderConfig:
    cfg = get_preset("places").location_encoder  # a fresh config on every call
    opts = cfg.position.options
    opts.min_radius = min_radius
    if listed:  # what a saved encoder may hold: the schedule's f_s written out
        opts.frequencies = geometric_frequencies(opts.frequency_num, opts.min_radius,
                                                 opts.max_radius, opts.freq_init, opts.seed).tolist()
    return cfg


def test_listed_frequencies_equal_the_schedule_they_came_from():
    saved, config = _gridcell(listed=True), _gridcell()
    assert saved.model_fields() != config.model_fields()  # what refused the shipped `earth`
    assert resolved_fields(saved) == resolved_fields(config)


def test_another_schedule_is_still_another_encoder():
    assert resolved_fields(_gridcell(0.1, listed=True)) != resolved_fields(_gridcell(1.0))
    assert resolved_fields(_gridcell(0.1)) != resolved_fields(_gridcell(1.0))
