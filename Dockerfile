# Container image of the csp-tf TFX pipeline on Kubeflow Pipelines v2 / Vertex AI Pipelines.
# Every component of the compiled spec (`csp-tf pipeline compile --kubeflow --image IMAGE`) runs
# `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor` in this image, so
# it holds the locked stack plus csp_tf, tfx_pipeline and serving.
#
#   docker build -t gcr.io/PROJECT/csp-tf:1 .
#   docker build -t gcr.io/PROJECT/csp-tf:1-gpu --build-arg BASE_IMAGE=tensorflow/tensorflow:2.16.2-gpu .
#
# The install is the two-phase trick of scripts/install.sh: TFX 1.16 and ml-pipelines-sdk declare
# `Requires-Python <3.11` but are pure Python and run on 3.11, so those two go in with
# --no-deps --ignore-requires-python; everything else is pinned in requirements/lock.txt.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements/ requirements/
RUN python3 -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" \
 && python3 -m pip install --no-deps --ignore-requires-python -r requirements/lock-ignore-python.txt \
 && python3 -m pip install -r requirements/lock.txt

# The project itself (setup.py reads README.md; package_data carries the curated schema).
COPY setup.py README.md ./
COPY csp_tf/ csp_tf/
COPY tfx_pipeline/ tfx_pipeline/
COPY serving/ serving/
COPY csp_cli/ csp_cli/
RUN python3 -m pip install --no-deps --no-build-isolation . \
 && python3 -c "import tensorflow, keras, tfx, apache_beam, tensorflow_serving.apis, csp_tf, \
tfx_pipeline.components, tfx_pipeline.trainer_pretrain, tfx_pipeline.trainer_finetune" \
 && python3 -c "import os, tfx_pipeline.configs as c; assert os.path.exists(c.SCHEMA_TEMPLATE)"

# Work in a directory without the sources, so the installed package is what gets imported.
WORKDIR /tmp
