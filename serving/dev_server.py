"""A DEVELOPMENT gRPC PredictionService + ModelService for csp-tf SavedModels.

NOT TF Serving. Production serves the exports with the official ``tensorflow/serving:2.16.1``
image (docs/serving.md). This server exists because the ``tensorflow_model_server`` binary
cannot be installed on the development machines (no package registry carries it and there is
no Docker engine), and the client, the warmup files and the load benchmark still need a real
gRPC endpoint speaking the same protocol. It implements the same protos
(tensorflow-serving-api's generated servicers):

* ``PredictionService.Predict``, ``Classify`` (on the ``classify`` signature) and
  ``GetModelMetadata`` (``signature_def``); ``Regress`` answers INVALID_ARGUMENT (the model has
  no regression signature, TF Serving's message); ``MultiInference`` answers UNIMPLEMENTED;
* ``ModelService.GetModelStatus``; ``HandleReloadConfigRequest`` answers UNIMPLEMENTED;

over a versioned model base path (see :mod:`serving.model_manager` for loading, polling and
swapping), with TF Serving's status codes and similar messages (see :mod:`serving.servable`).
It never dies on a bad request, and stops cleanly on :meth:`DevServer.stop`, SIGTERM or SIGINT.

Overload is bounded, so a burst costs a bounded amount of memory and answers quickly: at most
``max_concurrent_rpcs`` RPCs are admitted (running on ``max_workers`` threads, the rest queued);
gRPC answers every RPC beyond that at once with RESOURCE_EXHAUSTED ("Concurrent RPC limit
exceeded!") without reading its message, and a connection opens at most twice that many
streams (the client gets UNAVAILABLE for the rest). A request larger than ``max_request_bytes`` is
INVALID_ARGUMENT naming the limit, one above twice that is refused by gRPC itself before it is
read (RESOURCE_EXHAUSTED "Received message larger than max"), and a batch above
``max_batch_size`` rows is INVALID_ARGUMENT as TF Serving's batching answers it. The TF Serving
settings that play these parts are in docs/serving.md ("Overload").
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from tensorflow_serving.apis import (get_model_metadata_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc)

from serving import contract
from serving.model_manager import ModelManager
from serving.servable import RpcAbort

logger = logging.getLogger("serving.dev_server")
_SIGNATURE_DEF = "signature_def"


def _answer(context: grpc.ServicerContext, handler: Callable, *args):
    """Runs ``handler``; RpcAbort becomes its gRPC status, anything else INTERNAL."""
    try:
        return handler(*args)
    except RpcAbort as exc:
        error = exc
    except Exception as exc:  # a bug or an unexpected TF error: answer, don't die
        logger.exception("[DEVELOPMENT server] internal error")
        error = RpcAbort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    context.abort(error.code, error.message)


def _unimplemented(context: grpc.ServicerContext, method: str) -> None:
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{method} is not implemented by the csp-tf DEVELOPMENT server "
                  "(TF Serving implements it); use Predict")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService on a :class:`ModelManager`."""

    def __init__(self, manager: ModelManager, max_batch_size: int | None,
                 max_request_bytes: int | None = None):
        self._manager = manager
        self._max_batch_size = max_batch_size
        self._max_request_bytes = max_request_bytes

    def _run(self, method: str, request, *limit):
        """``Servable.<method>`` of the version ``request`` names (``limit``: the batch limit)."""
        check_request_size(request, self._max_request_bytes)
        servable = self._manager.resolve(request.model_spec)
        return getattr(servable, method)(request, self._manager.model_name, *limit)

    def _metadata(self, request):
        if not request.HasField("model_spec"):
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                           "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != _SIGNATURE_DEF:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Metadata field {field} is not supported")
        servable = self._manager.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self._manager.model_name
        response.model_spec.version.value = servable.version
        response.metadata[_SIGNATURE_DEF].Pack(servable.signature_defs)
        return response

    def Predict(self, request, context):
        return _answer(context, self._run, "predict", request, self._max_batch_size)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._metadata, request)

    def Classify(self, request, context):
        return _answer(context, self._run, "classify", request, self._max_batch_size)

    def Regress(self, request, context):
        return _answer(context, self._run, "regress", request)

    def MultiInference(self, request, context):
        _unimplemented(context, "MultiInference")


def check_request_size(request, max_request_bytes: int | None) -> None:
    """INVALID_ARGUMENT naming the limit when the request message is above it."""
    if max_request_bytes:
        size = request.ByteSize()
        if size > max_request_bytes:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Request of {size} bytes is larger than the server's maximum request "
                           f"size of {max_request_bytes} bytes (serve-dev --max-request-bytes); "
                           f"split it into smaller requests")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService (GetModelStatus) on a :class:`ModelManager`."""

    def __init__(self, manager: ModelManager):
        self._manager = manager

    def GetModelStatus(self, request, context):
        return _answer(context, self._manager.model_status, request.model_spec)

    def HandleReloadConfigRequest(self, request, context):
        _unimplemented(context, "HandleReloadConfigRequest")


class DevServer:
    """The DEVELOPMENT PredictionService/ModelService server (not TF Serving; see module doc).

    Args:
      model_base_path: directory of integer-named version directories.
      model_name: the model name requests must use (``csp``).
      port: TCP port; 0 picks a free one (returned by :meth:`start`).
      host: interface to bind; the default keeps it on loopback.
      poll_interval_s: seconds between scans of ``model_base_path`` for new versions.
      max_batch_size: larger Predict batches fail with INVALID_ARGUMENT, as with TF Serving's
        ``--enable_batching`` (``max_batch_size`` in serving/batching.config); None: no limit.
      num_versions: newest versions kept loaded (``latest { num_versions }``).
      version_labels: label → version, for ModelSpec.version_label.
      max_workers: RPC threads, i.e. concurrent requests served.
      enable_warmup: replay each version's warmup file before publishing it.
      max_concurrent_rpcs: RPCs admitted at once (running + queued for a thread); gRPC answers
        the ones beyond at once with RESOURCE_EXHAUSTED. None: 2 x ``max_workers``.
      max_request_bytes: larger request messages are INVALID_ARGUMENT naming the limit; above
        twice this gRPC refuses them unread (RESOURCE_EXHAUSTED). None: no limit (TF Serving's
        INT_MAX).

    Use as ``with DevServer(path) as server: ...`` or ``port = server.start(); ...;
    server.stop()``.
    """

    def __init__(self, model_base_path: str, model_name: str = contract.MODEL_NAME,
                 port: int = 0, host: str = "127.0.0.1", poll_interval_s: float = 2.0,
                 max_batch_size: int | None = 128, num_versions: int = 1,
                 version_labels: dict[str, int] | None = None, max_workers: int = 32,
                 enable_warmup: bool = True, max_concurrent_rpcs: int | None = None,
                 max_request_bytes: int | None = contract.DEV_MAX_REQUEST_BYTES):
        self.manager = ModelManager(model_base_path, model_name, num_versions, version_labels,
                                    enable_warmup)
        self.host, self.port = host, port
        self.poll_interval_s = poll_interval_s
        self.max_batch_size = max_batch_size
        self.max_workers = max_workers
        self.max_concurrent_rpcs = max_concurrent_rpcs or 2 * max_workers
        if self.max_concurrent_rpcs < max_workers:
            raise ValueError(f"max_concurrent_rpcs={self.max_concurrent_rpcs} is below "
                             f"max_workers={max_workers}")
        self.max_request_bytes = max_request_bytes or None
        self._server: grpc.Server | None = None
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Loads the newest version(s), starts polling and serving; returns the bound port.

        Like ``tensorflow_model_server``, it loads the versions present before it opens the port.
        A DevServer runs once: after :meth:`stop`, make a new one.

        Raises:
          RuntimeError: the port cannot be bound, or the server was stopped before.
        """
        if self._server is not None:
            return self.port
        if self._stopped.is_set():
            raise RuntimeError("a stopped DevServer cannot be restarted; create a new one")
        logger.warning("[DEVELOPMENT server] csp-tf development PredictionService; NOT TF "
                       "Serving. Production uses tensorflow/serving:2.16.1 (docs/serving.md)")
        self.manager.poll_once()
        if not self.manager.available_versions:
            logger.warning("[DEVELOPMENT server] no loadable version under %s yet; polling "
                           "every %.1f s", self.manager.base_path, self.poll_interval_s)
        self.manager.start_polling(self.poll_interval_s)
        server = grpc.server(
            futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="csp-dev-server"),
            options=self._channel_options(),
            maximum_concurrent_rpcs=self.max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.manager, self.max_batch_size, self.max_request_bytes), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.manager),
                                                                 server)
        bound = server.add_insecure_port(self.address)
        if not bound:
            self.manager.stop()
            raise RuntimeError(f"could not bind {self.address}")
        self.port = bound
        server.start()
        self._server = server
        logger.warning("[DEVELOPMENT server] serving model %r from %s on %s (versions %s)",
                       self.manager.model_name, self.manager.base_path, self.address,
                       self.manager.available_versions)
        return bound

    def _channel_options(self) -> list[tuple[str, int]]:
        """Transport limits that bound what a burst can make the server hold: gRPC's receive
        limit (twice ``max_request_bytes``; between the two the handler answers INVALID_ARGUMENT
        naming the limit; none: TF Serving's INT_MAX), at most 2 x ``max_concurrent_rpcs``
        open streams per connection (the client gets UNAVAILABLE for the others, gRPC's
        REFUSED_STREAM), and a fixed 64 KiB flow-control window per stream (no BDP probing,
        which grows windows to megabytes on a fast link), so the messages of calls about to be
        refused are never buffered whole."""
        receive = 2 * self.max_request_bytes if self.max_request_bytes else -1
        return [("grpc.max_receive_message_length", receive), ("grpc.max_send_message_length", -1),
                ("grpc.max_concurrent_streams", 2 * self.max_concurrent_rpcs),
                ("grpc.http2.bdp_probe", 0)]

    def stop(self, grace: float | None = 2.0) -> None:
        """Stops accepting RPCs, lets in-flight ones finish for ``grace`` s, stops polling."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
            logger.warning("[DEVELOPMENT server] stopped")
        self.manager.stop()
        self._stopped.set()

    def serve_forever(self, grace: float = 5.0) -> None:
        """Starts (if needed) and blocks until SIGTERM/SIGINT or :meth:`stop`, then stops.

        The signal handlers go in before the first load, so a SIGTERM that arrives while the
        model is still loading also stops the server cleanly. Call from the main thread.
        """
        requested = threading.Event()

        def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
            logger.warning("[DEVELOPMENT server] %s received, stopping",
                           signal.Signals(signum).name)
            requested.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self._server is None and not requested.is_set():
                self.start()
            while not requested.is_set() and not self._stopped.is_set():
                requested.wait(0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop(grace)

    def __enter__(self) -> "DevServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
