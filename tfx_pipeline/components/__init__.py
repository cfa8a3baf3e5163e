"""Custom pieces of the csp-tf pipeline: a checked ImportExampleGen executor, the anomalies
gate and an atomic, locked Pusher. Import this module only where TFX is wanted (it imports TFX)."""

from tfx_pipeline.components.anomalies_gate import AnomaliesGate, DataAnomalyError
from tfx_pipeline.components.atomic_pusher import AtomicPushExecutor, AtomicPusher
from tfx_pipeline.components.checked_import import CheckedImportExampleGen, CheckedImportExecutor

__all__ = ["AnomaliesGate", "AtomicPushExecutor", "AtomicPusher", "CheckedImportExampleGen",
           "CheckedImportExecutor", "DataAnomalyError"]
