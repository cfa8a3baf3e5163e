"""tf.Example wire encoding against TensorFlow's own parsers."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from csp_tf import features as fk
from csp_tf.data import schema


def _record(**changes):
    rec = {fk.ID: "obs-1", fk.LON: -179.5, fk.LAT: 89.25,
           fk.IMAGE_FEATURES: np.linspace(-3, 3, 7).astype(np.float32), fk.LABEL: 5,
           fk.CLASS_RANK: 3, fk.CLASS_COUNT: 300, fk.REGION: "asia", fk.LABEL_SUBSET: 0.05}
    rec.update(changes)
    return rec


def test_round_trip_through_tf_example_and_parse_example():
    records = [_record(), _record(**{fk.ID: "ünï-2", fk.LABEL: -1, fk.CLASS_RANK: -1, fk.CLASS_COUNT: 0,
                                     fk.REGION: "", fk.LABEL_SUBSET: fk.NO_SUBSET}),
               _record(**{fk.LABEL: 2 ** 40, fk.IMAGE_FEATURES: np.full(7, np.float32(1e-30))})]
    serialized = [schema.encode_example(r) for r in records]
    parsed = tf.io.parse_example(tf.constant(serialized), schema.feature_spec(7))
    for i, rec in enumerate(records):
        assert parsed[fk.ID][i].numpy().decode() == rec[fk.ID]
        assert parsed[fk.REGION][i].numpy().decode() == rec[fk.REGION]
        np.testing.assert_array_equal(parsed[fk.IMAGE_FEATURES][i].numpy(), rec[fk.IMAGE_FEATURES])
        assert parsed[fk.LON][i].numpy() == np.float32(rec[fk.LON])
        assert parsed[fk.LAT][i].numpy() == np.float32(rec[fk.LAT])
        for key in (fk.LABEL, fk.CLASS_RANK, fk.CLASS_COUNT):
            assert parsed[key][i].numpy() == rec[key]
        assert parsed[fk.LABEL_SUBSET][i].numpy() == np.float32(rec[fk.LABEL_SUBSET])
        proto = tf.train.Example.FromString(serialized[i])
        assert set(proto.features.feature) == {fk.ID, fk.LON, fk.LAT, fk.IMAGE_FEATURES, fk.LABEL,
                                               fk.CLASS_RANK, fk.CLASS_COUNT, fk.REGION, fk.LABEL_SUBSET}
        decoded = schema.decode_example(serialized[i], 7)
        assert decoded[fk.ID] == rec[fk.ID] and decoded[fk.LABEL] == rec[fk.LABEL]


def test_defaults_for_unlabeled_rows():
    rec = {fk.ID: "u", fk.LON: 0.0, fk.LAT: 0.0, fk.IMAGE_FEATURES: np.zeros(3, np.float32)}
    parsed = schema.decode_example(schema.encode_example(rec), 3)
    assert (parsed[fk.LABEL], parsed[fk.CLASS_RANK], parsed[fk.CLASS_COUNT]) == (fk.UNLABELED, -1, 0)
    assert parsed[fk.LABEL_SUBSET] == fk.NO_SUBSET


def test_records_written_before_label_subset_parse_with_its_default():
    """Data roots ingested before the label_subset feature existed still parse (value -1)."""
    old = tf.train.Example()
    for key, value in ((fk.ID, b"a"), (fk.REGION, b"asia")):
        old.features.feature[key].bytes_list.value.append(value)
    for key, value in ((fk.LON, 1.0), (fk.LAT, 2.0)):
        old.features.feature[key].float_list.value.append(value)
    old.features.feature[fk.IMAGE_FEATURES].float_list.value.extend([0.5, 1.5])
    for key in (fk.LABEL, fk.CLASS_RANK, fk.CLASS_COUNT):
        old.features.feature[key].int64_list.value.append(1)
    parsed = tf.io.parse_single_example(old.SerializeToString(), schema.feature_spec(2))
    assert parsed[fk.LABEL_SUBSET].numpy() == fk.NO_SUBSET
    assert schema.decode_example(old.SerializeToString(), 2)[fk.LABEL_SUBSET] == fk.NO_SUBSET


def test_wide_features():
    rec = _record(**{fk.IMAGE_FEATURES: np.arange(2048, dtype=np.float32)})
    parsed = tf.io.parse_single_example(schema.encode_example(rec), schema.feature_spec(2048))
    np.testing.assert_array_equal(parsed[fk.IMAGE_FEATURES].numpy(), np.arange(2048))
