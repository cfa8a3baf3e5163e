"""Warmup requests: one per signature and batch size, written where TF Serving reads them."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from csp_tf import warmup
from serving import contract


def test_one_request_per_signature_and_batch_size():
    requests = warmup.build_warmup_requests("csp", feature_dim=8, num_classes=5,
                                            batch_sizes=(1, 3))
    assert len(requests) == 8
    assert [r.model_spec.signature_name for r in requests] == list(contract.PREDICT_SIGNATURES) * 2
    for request in requests:
        assert request.model_spec.name == "csp"
        assert set(request.inputs) == set(
            contract.SIGNATURE_INPUTS[request.model_spec.signature_name])
    batch3 = requests[4:]
    assert tf.make_ndarray(batch3[1].inputs[contract.IMAGE_FEATURES]).shape == (3, 8)
    assert tf.make_ndarray(batch3[3].inputs[contract.LON_LAT]).dtype == np.float32
    assert tf.make_ndarray(batch3[0].inputs[contract.EXAMPLES]).shape == (3,)


def test_written_file_is_a_tfrecord_of_prediction_logs(tmp_path):
    version_dir = str(tmp_path / "1")
    tf.io.gfile.makedirs(version_dir)
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")  # the writer only checks it is there
    requests = warmup.build_warmup_requests(feature_dim=8)
    path = warmup.write_warmup_requests(version_dir, requests)
    assert path == os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert [log.predict_log.request for log in logs] == requests
    assert warmup.read_warmup_requests(version_dir) == logs


def test_write_rejects_bad_input(tmp_path):
    requests = warmup.build_warmup_requests(feature_dim=4)
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        warmup.write_warmup_requests(str(tmp_path), requests)
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="1..1000"):
        warmup.write_warmup_requests(str(tmp_path), requests * 251)
    with pytest.raises(ValueError, match="1..1000"):
        warmup.write_warmup_requests(str(tmp_path), [])
    with pytest.raises(ValueError, match="feature_dim"):
        warmup.build_warmup_requests(feature_dim=0)
    with pytest.raises(ValueError, match="at most 1000"):
        warmup.build_warmup_requests(feature_dim=4, batch_sizes=[1] * 251)


def test_default_model_name_agrees_with_the_serving_contract():
    assert warmup.MODEL_NAME == contract.MODEL_NAME
