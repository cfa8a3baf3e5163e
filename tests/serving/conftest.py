"""Fixtures for the serving tests: a stand-in SavedModel and a server to query.

By default the server is the DEVELOPMENT server (:class:`serving.dev_server.DevServer`) on a
free port on 127.0.0.1. With ``CSP_TF_MODEL_SERVER=/path/to/tensorflow_model_server`` in the
environment, the same tests run against the real TF Serving binary instead (started on free
ports with ``--model_base_path``, warmup and batching on); tests of the development server's own
features (test_dev_server.py) always use the development server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

MODEL_SERVER_ENV = "CSP_TF_MODEL_SERVER"
MAX_BATCH_SIZE = 32  # the dev server's --max-batch-size and TF Serving's max_batch_size here
POLL_INTERVAL_S = 0.2  # dev server; TF Serving polls in whole seconds (1)


@dataclasses.dataclass
class ServingTarget:
    """A running server: its gRPC address, the base path it polls, and what it is."""

    address: str
    base_path: str
    kind: str  # "dev_server" or "tensorflow_model_server"
    max_batch_size: int = MAX_BATCH_SIZE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def push_version(source_dir: str, base_path: str, version: int) -> str:
    """Copies a version directory into ``base_path/<version>`` atomically (copy, then rename)."""
    staging = os.path.join(base_path, f".staging-{uuid.uuid4().hex[:8]}")
    shutil.copytree(source_dir, staging)
    final = os.path.join(base_path, str(version))
    os.rename(staging, final)
    return final


@contextlib.contextmanager
def _tensorflow_model_server(binary: str, base_path: str, workdir: str
                             ) -> Iterator[ServingTarget]:
    from serving.client import CSPServingClient

    batching = os.path.join(workdir, f"batching-{uuid.uuid4().hex[:6]}.config")
    with open(batching, "w") as f:
        f.write(f"max_batch_size {{ value: {MAX_BATCH_SIZE} }}\n"
                "batch_timeout_micros { value: 0 }\nnum_batch_threads { value: 4 }\n"
                "max_enqueued_batches { value: 1000 }\n")
    port = free_port()
    log = open(os.path.join(workdir, f"model_server-{port}.log"), "w")
    proc = subprocess.Popen(
        [binary, f"--port={port}", f"--rest_api_port={free_port()}", "--model_name=csp",
         f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=1",
         "--enable_model_warmup=true", "--enable_batching=true",
         f"--batching_parameters_file={batching}"],
        stdout=log, stderr=subprocess.STDOUT)
    target = ServingTarget(f"127.0.0.1:{port}", base_path, "tensorflow_model_server")
    try:
        with CSPServingClient(target.address, retries=0, timeout_s=2.0) as client:
            client.wait_until_available(timeout_s=60.0)
        yield target
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def serve(base_path: str, workdir: str, **dev_server_kwargs) -> Iterator[ServingTarget]:
    """Serves ``base_path`` with TF Serving if ``CSP_TF_MODEL_SERVER`` is set, else DevServer."""
    binary = os.environ.get(MODEL_SERVER_ENV)
    if binary:
        with _tensorflow_model_server(binary, base_path, workdir) as target:
            yield target
        return
    from serving.dev_server import DevServer

    kwargs = {"poll_interval_s": POLL_INTERVAL_S, "max_batch_size": MAX_BATCH_SIZE,
              **dev_server_kwargs}
    with DevServer(base_path, **kwargs) as server:
        yield ServingTarget(server.address, base_path, "dev_server")


@pytest.fixture(scope="session")
def standin_versions(tmp_path_factory) -> dict[int, str]:
    """TEST FIXTURE, not the CSP model: stand-in SavedModels v1 and v2 with the PRODUCTION
    signature contract of docs/architecture.md.

    :func:`serving.standin_model.export_standin` writes a fixed random linear model (F=8
    features, C=5 classes, D=4 embedding, top-3) behind exactly the four production signatures
    (``serving_default``, ``predict_features``, ``location_embedding``, ``location_prior``),
    with the same input/output names and dtypes, the in-graph lon/lat checks that raise
    InvalidArgumentError naming the field, and a warmup file. v1 and v2 differ in their
    weights, so a version switch shows in the predictions. Returns {version: directory} of a
    pristine store; tests copy versions from it with :func:`push_version`.
    """
    from serving.standin_model import export_standin

    store = str(tmp_path_factory.mktemp("standin_store"))
    return {v: export_standin(store, version=v) for v in (1, 2)}


@pytest.fixture(scope="session")
def standin_model(standin_versions):
    """The stand-in v1 loaded in-process, the reference the served answers must match."""
    import tensorflow as tf

    return tf.saved_model.load(standin_versions[1])


@pytest.fixture(scope="session")
def server(standin_versions, tmp_path_factory) -> Iterator[ServingTarget]:
    """A server (dev server, or TF Serving per CSP_TF_MODEL_SERVER) serving stand-in v1."""
    base = str(tmp_path_factory.mktemp("models") / "csp")
    os.makedirs(base)
    push_version(standin_versions[1], base, 1)
    with serve(base, str(tmp_path_factory.mktemp("server"))) as target:
        yield target


@pytest.fixture(scope="session")
def push():
    """:func:`push_version`: copy a version directory into a base path atomically."""
    return push_version


@pytest.fixture(scope="session")
def serve_base_path(tmp_path_factory):
    """:func:`serve` bound to a scratch directory: ``with serve_base_path(base) as target``."""
    workdir = str(tmp_path_factory.mktemp("servers"))
    return lambda base_path, **kwargs: serve(base_path, workdir, **kwargs)


@pytest.fixture(scope="session")
def unused_port():
    """:func:`free_port`."""
    return free_port


@pytest.fixture
def client(server):
    from serving.client import CSPServingClient

    with CSPServingClient(server.address, timeout_s=10.0, retries=1) as c:
        yield c


@pytest.fixture(scope="session")
def stubs(server):
    """Raw tensorflow-serving-api stubs on the server (to send what the client would refuse)."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server.address)
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


@pytest.fixture(scope="session")
def serve_fn():
    """The ``serve(base_path, workdir)`` context manager, for tests that bring their own model."""
    return serve
