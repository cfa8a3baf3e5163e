"""csp-tf as a TFX pipeline: ingest → validate → pre-train → fine-tune → evaluate → push.

``pipeline.create_pipeline`` wires the components (a pure factory); ``local_runner`` runs it
with ``LocalDagRunner`` and SQLite MLMD; ``kubeflow_runner`` compiles it to a KFP v2 pipeline
spec; ``cli`` adds ``csp-tf pipeline run|compile``. Importing this package does not import TFX
(the console script's ``--help`` stays fast). See docs/pipeline.md.
"""
