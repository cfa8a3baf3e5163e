"""Serving csp-tf SavedModels: TF Serving deployment, gRPC client, DEVELOPMENT server.

* ``models.config``, ``batching.config``, ``monitoring.config``, ``deploy/``: the production
  deployment on the official ``tensorflow/serving:2.16.1`` image (docs/serving.md).
* :mod:`serving.client`: ``CSPServingClient`` on tensorflow-serving-api's gRPC stubs.
* :mod:`serving.dev_server`: a DEVELOPMENT PredictionService/ModelService (not TF Serving),
  for machines without ``tensorflow_model_server``.
* :mod:`serving.cli`: ``query`` and ``serve-dev`` sub-commands for ``csp-tf``.
* :mod:`serving.contract`: the signature/input/output names of docs/architecture.md.

The warmup requests inside each version are written by the exporter (:mod:`csp_tf.warmup`);
the library imports nothing from here.

Importing ``serving`` (or ``serving.cli``, ``serving.contract``) does not import TensorFlow.
"""
