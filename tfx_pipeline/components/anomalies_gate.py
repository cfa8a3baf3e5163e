"""``AnomaliesGate``: fails the run when ExampleValidator found anomalies.

TFX 1.16's ExampleValidator writes an ExampleAnomalies artifact (and a per-split ``blessed``
custom property) but never fails; this one-function component reads the artifact and raises a
``DataAnomalyError`` listing every anomaly, so no Trainer runs on data that breaks the schema.
"""

from typing import TypedDict

from tfx import v1 as tfx
from tfx.types import artifact_utils

from tfx_pipeline.validation import anomalies_message, describe_anomalies


class DataAnomalyError(RuntimeError):
    """The examples do not match the curated schema; the message lists the anomalies."""


class GateOutputs(TypedDict):
    checked_splits: str  # comma-separated split names that passed


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> GateOutputs:
    """Raises DataAnomalyError if any split has anomalies; returns the splits checked."""
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    found = describe_anomalies(anomalies.uri, splits)
    if found:
        raise DataAnomalyError(anomalies_message(found, f"(anomalies artifact: {anomalies.uri})"))
    return {"checked_splits": ",".join(splits)}
