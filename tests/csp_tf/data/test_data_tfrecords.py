"""Gzip TFRecords written without TensorFlow: the same bytes as tf.io.TFRecordWriter."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from csp_tf.data.tfrecords import write_gzip_tfrecords


def test_the_bytes_are_tensorflows_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    for n in (0, 1, 3000):  # 3000 rows: several MB, past the writer's flush size
        records = [rng.standard_normal(int(rng.integers(0, 400))).astype(np.float32).tobytes()
                   for _ in range(n)]
        ours, theirs = str(tmp_path / f"ours{n}.gz"), str(tmp_path / f"tf{n}.gz")
        assert write_gzip_tfrecords(ours, iter(records)) == n
        with tf.io.TFRecordWriter(theirs, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
            for record in records:
                w.write(record)
        assert open(ours, "rb").read() == open(theirs, "rb").read()
        read = [r.numpy() for r in tf.data.TFRecordDataset(ours, compression_type="GZIP")]
        assert read == records
