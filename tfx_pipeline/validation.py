"""The curated schema, pinned to one data root's shapes, and the anomalies check.

ExampleValidator in TFX 1.16 only *records* anomalies (an ExampleAnomalies artifact with a
per-split ``blessed`` property); it never fails the run. ``describe_anomalies`` turns that
artifact into one readable message, and ``components.anomalies_gate`` raises it, so the run
stops before any training.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List

from tfx_pipeline import configs


def render_schema(feature_dim: int, num_classes: int, out_dir: str,
                  template: str = configs.SCHEMA_TEMPLATE) -> str:
    """Writes the curated schema with ``image_features`` width F and labels < C pinned.

    The file lands at ``<out_dir>/<content hash>/schema.pbtxt``: ImportSchemaGen caches on the
    path, so a different schema must get a different path. Returns that path.
    """
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    if feature_dim <= 0 or num_classes <= 0:
        raise ValueError(f"feature_dim={feature_dim} and num_classes={num_classes} must be > 0")
    schema = tfdv.load_schema_text(template)
    found = {f.name: f for f in schema.feature}
    found["image_features"].value_count.min = feature_dim
    found["image_features"].value_count.max = feature_dim
    found["label"].int_domain.max = num_classes - 1
    text = _header(feature_dim, num_classes) + str(schema)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = os.path.join(out_dir, digest, "schema.pbtxt")
    if not tf.io.gfile.exists(path):
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
    return path


def _header(feature_dim: int, num_classes: int) -> str:
    return (f"# Rendered from tfx_pipeline/schema/schema.pbtxt for feature_dim={feature_dim}, "
            f"num_classes={num_classes}.\n")


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> Dict[str, List[str]]:
    """{split: ["feature 'lat': Out-of-range values: ...", ...]} for every split with anomalies."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tfx.utils import io_utils

    found: Dict[str, List[str]] = {}
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb")
        if not tf.io.gfile.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        lines = []
        for feature, info in sorted(anomalies.anomaly_info.items()):
            detail = "; ".join(r.description.strip() for r in info.reason) or info.description.strip()
            lines.append(f"feature {feature!r}: {info.short_description}: {detail}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"dataset: {info.short_description}: {info.description}")
        if lines:
            found[split] = lines
    return found


def anomalies_message(found: Dict[str, List[str]], schema_hint: str = "") -> str:
    """The error a user reads when the data does not match the schema."""
    parts = [f"ExampleValidator found anomalies in {len(found)} split(s); the pipeline stops "
             f"before training:"]
    for split, lines in found.items():
        parts += [f"  [{split}] {line}" for line in lines]
    parts.append("Fix the data (re-run `csp-tf ingest`) or, if the new data is right, update "
                 "tfx_pipeline/schema/schema.pbtxt." + (f" {schema_hint}" if schema_hint else ""))
    return "\n".join(parts)
