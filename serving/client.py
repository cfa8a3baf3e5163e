"""gRPC client for the csp-tf model on TF Serving (or the development server).

Built on tensorflow-serving-api's own stubs (``PredictionServiceStub``,
``ModelServiceStub``), so it speaks to ``tensorflow_model_server`` unchanged::

    with CSPServingClient("localhost:8500") as client:
        prior = client.location_prior([[2.35, 48.86]])          # [1, C] per-class sigmoids
        out = client.classify(image_features, lon_lat)          # predict_features outputs
        top = client.top_labels(image_features, lon_lat)        # Classify RPC: [[(label, score)]]

Every call has a deadline (``timeout_s``, all attempts included); UNAVAILABLE (server down or
restarting) is retried up to ``retries`` times with exponential backoff by gRPC itself (a
service-config ``retryPolicy`` on the channel), nothing else is. Failures raise
:class:`ServingError` saying what was wrong: unknown model/version/label/signature, bad
shapes or dtypes, bad coordinates (checked here before sending too, naming row and field).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow.core.framework import types_pb2

from csp_tf.coords import check_lon_lat_array
from serving import contract

MAX_RETRIES = 4  # gRPC caps a retryPolicy at 5 attempts
_WHAT_WENT_WRONG = {
    grpc.StatusCode.NOT_FOUND: "unknown model or version, or the version is not loaded",
    grpc.StatusCode.FAILED_PRECONDITION: "unknown signature",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid request",
    grpc.StatusCode.UNAVAILABLE: "server unreachable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "no answer before the deadline",
    grpc.StatusCode.UNIMPLEMENTED: "not supported by this server",
}


class ServingError(RuntimeError):
    """A failed serving call.

    Attributes:
      code: the gRPC status code (INVALID_ARGUMENT for inputs rejected before sending).
      client_side: True when the client rejected the input without calling the server.
    """

    def __init__(self, message: str, code: grpc.StatusCode | None = None,
                 client_side: bool = False):
        super().__init__(message)
        self.code = code
        self.client_side = client_side


def _invalid(message: str) -> ServingError:
    return ServingError(f"invalid input (checked before sending): {message}",
                        grpc.StatusCode.INVALID_ARGUMENT, client_side=True)


def validate_lon_lat(lon_lat, allow_missing: bool = False) -> np.ndarray:
    """``lon_lat`` as float32 [N >= 1, 2] after ``csp_tf.coords.check_lon_lat_array``.

    A single ``(lon, lat)`` pair is accepted as one row. With ``allow_missing`` a row whose lon
    AND lat are both NaN ("no location": image-only) passes; one NaN coordinate never does.

    Raises:
      ServingError: naming the row and the field (``lon`` or ``lat``) that is wrong.
    """
    try:
        arr = check_lon_lat_array([lon_lat] if np.ndim(lon_lat) == 1 else lon_lat,
                                  contract.LON_LAT, allow_missing)
    except ValueError as exc:  # CoordinateError, or a ragged list
        raise _invalid(str(exc)) from exc
    if not len(arr):
        raise _invalid("lon_lat must have shape [N, 2] (lon, lat) with N >= 1, got no rows")
    return arr


def validate_image_features(image_features, rows: int) -> np.ndarray:
    """``image_features`` as float32 [rows, F], finite. Raises ServingError naming the row."""
    try:
        arr = np.asarray(image_features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"image_features must be numbers: {exc}") from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise _invalid(f"image_features must have shape [{rows}, F] to match lon_lat's {rows} "
                       f"rows, got {list(arr.shape)}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise _invalid(f"row {int(bad[0])}: image_features has NaN or inf")
    return arr


def _retry_options(retries: int, backoff_s: float) -> list[tuple[str, object]]:
    """Channel options for gRPC's own retries of UNAVAILABLE (gRFC A6 service config)."""
    if not retries:
        return [("grpc.enable_retries", 0)]
    policy = {"maxAttempts": retries + 1, "initialBackoff": f"{backoff_s:.3f}s", "maxBackoff": "2s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
    config = {"methodConfig": [{"name": [{}], "retryPolicy": policy}]}  # [{}]: every method
    return [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]


def _tensor_info(info) -> dict:
    return {"dtype": types_pb2.DataType.Name(info.dtype),
            "shape": [d.size for d in info.tensor_shape.dim]}


class CSPServingClient:
    """Client for the csp-tf SavedModel signatures (docs/architecture.md) over gRPC.

    Args:
      address: ``host:port`` of the gRPC endpoint (TF Serving's default port is 8500).
      model_name: model name in the server's config.
      version: pin a version number (ModelSpec.version); None serves the latest.
      version_label: or pin a label such as ``stable``/``canary`` (ModelSpec.version_label).
      timeout_s: deadline of each call, its retries included.
      retries: extra attempts after UNAVAILABLE (0 to ``MAX_RETRIES``); nothing else is retried.
      backoff_s: bound of the first retry's random delay, doubled per attempt (capped at 2 s).
    """

    def __init__(self, address: str = f"localhost:{contract.GRPC_PORT}",
                 model_name: str = contract.MODEL_NAME, version: int | None = None,
                 version_label: str | None = None, timeout_s: float = 10.0, retries: int = 3,
                 backoff_s: float = 0.1):
        if version is not None and version_label:
            raise ValueError("give version or version_label, not both")
        if timeout_s <= 0 or not 0 <= retries <= MAX_RETRIES or backoff_s < 1e-3:
            raise ValueError(f"need timeout_s > 0, 0 <= retries <= {MAX_RETRIES} and backoff_s "
                             f">= 0.001, got {timeout_s}, {retries}, {backoff_s}")
        self.address, self.model_name = address, model_name
        self.version, self.version_label = version, version_label
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.last_version: int | None = None  # version that answered the last predict()
        self._channel = grpc.insecure_channel(address, options=contract.CHANNEL_OPTIONS + _retry_options(
            retries, backoff_s))
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    # Plumbing ------------------------------------------------------------------------------
    def _target(self) -> str:
        if self.version is not None:
            return f"model {self.model_name!r} version {self.version}"
        if self.version_label:
            return f"model {self.model_name!r} label {self.version_label!r}"
        return f"model {self.model_name!r} (latest)"

    def _fill_spec(self, spec, signature: str | None = None) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label:
            spec.version_label = self.version_label
        if signature:
            spec.signature_name = signature

    def _call(self, rpc, request, what: str):
        """``rpc(request)`` with the deadline (the channel retries UNAVAILABLE); errors →
        ServingError."""
        try:
            return rpc(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            tries = (f" after up to {self.retries + 1} attempts"
                     if code == grpc.StatusCode.UNAVAILABLE and self.retries else "")
            hint = _WHAT_WENT_WRONG.get(code, "server error")
            if code == grpc.StatusCode.INVALID_ARGUMENT and "version label" in (
                    exc.details() or ""):
                hint = "unknown version label"
            raise ServingError(f"{what} for {self._target()} at {self.address} failed"
                               f"{tries}: {code.name} ({hint}): {exc.details()}",
                               code) from exc

    # Generic calls -------------------------------------------------------------------------
    def predict(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs ``signature`` on ``inputs`` (sent as-is, dtypes included); returns its outputs."""
        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self._prediction.Predict, request,
                              f"Predict(signature={signature!r})")
        self.last_version = response.model_spec.version.value
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def signature_defs(self) -> tuple[int, get_model_metadata_pb2.SignatureDefMap]:
        """(served version, SignatureDefMap) from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec)
        response = self._call(self._prediction.GetModelMetadata, request, "GetModelMetadata")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response.model_spec.version.value, signature_map

    def metadata(self) -> dict:
        """Model name, served version and each signature's inputs/outputs (dtype, shape).

        Internal signatures (``__saved_model_init_op``) are left out.
        """
        version, signature_map = self.signature_defs()
        signatures = {}
        for name, sig in sorted(signature_map.signature_def.items()):
            if name.startswith("__"):
                continue
            signatures[name] = {
                "method_name": sig.method_name,
                "inputs": {k: _tensor_info(v) for k, v in sorted(sig.inputs.items())},
                "outputs": {k: _tensor_info(v) for k, v in sorted(sig.outputs.items())},
            }
        return {"model": self.model_name, "version": version, "signatures": signatures}

    def status(self) -> list[dict]:
        """GetModelStatus: one entry per version (version, state, error code and message)."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec)
        request.model_spec.ClearField("version_label")  # status is per version number
        response = self._call(self._models.GetModelStatus, request, "GetModelStatus")
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        code_field = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name[
            "status"].message_type.fields_by_name["error_code"].enum_type
        return [{"version": s.version, "state": state_name(s.state),
                 "error_code": code_field.values_by_number[s.status.error_code].name,
                 "error_message": s.status.error_message}
                for s in response.model_version_status]

    def wait_until_available(self, version: int | None = None, timeout_s: float = 60.0) -> int:
        """Polls status until ``version`` (or any version) is AVAILABLE; returns that version.

        Raises:
          ServingError: not available within ``timeout_s`` (the last status is in the message).
        """
        deadline, last = time.monotonic() + timeout_s, "no answer"
        while time.monotonic() < deadline:
            try:
                states = self.status()
                last = str(states)
                ready = [s["version"] for s in states if s["state"] == "AVAILABLE"
                         and (version is None or s["version"] == version)]
                if ready:
                    return max(ready)
            except ServingError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise ServingError(f"{self._target()} at {self.address}: version "
                           f"{version if version is not None else 'any'} not AVAILABLE within "
                           f"{timeout_s} s; last status: {last}")

    # The csp-tf signatures -----------------------------------------------------------------
    def location_prior(self, lon_lat) -> np.ndarray:
        """P(y|loc): per-class sigmoids [N, C] for (lon, lat) rows in degrees."""
        return self.predict(contract.LOCATION_PRIOR, {contract.LON_LAT: validate_lon_lat(
            lon_lat)})[contract.PROBABILITIES]

    def location_embedding(self, lon_lat) -> np.ndarray:
        """Location-encoder embeddings [N, D] for (lon, lat) rows in degrees."""
        return self.predict(contract.LOCATION_EMBEDDING, {contract.LON_LAT: validate_lon_lat(
            lon_lat)})[contract.EMBEDDING]

    def classify(self, image_features, lon_lat) -> dict[str, np.ndarray]:
        """Fused P(y|img)·P(y|loc) via ``predict_features`` (Predict): probabilities, the two
        factors, top-k scores and classes. A row with lon and lat both NaN is image-only."""
        coords = validate_lon_lat(lon_lat, allow_missing=True)
        feats = validate_image_features(image_features, coords.shape[0])
        return self.predict(contract.PREDICT_FEATURES,
                            {contract.IMAGE_FEATURES: feats, contract.LON_LAT: coords})

    def classify_examples(self, serialized_examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        """``serving_default`` on serialized tf.Examples (``image_features``, ``lon``, ``lat``).

        Coordinates are inside the examples, so only the server checks them.
        """
        examples = list(serialized_examples)
        if not examples or not all(isinstance(e, bytes) for e in examples):
            raise _invalid("serialized_examples must be a non-empty sequence of bytes")
        return self.predict(contract.SERVING_DEFAULT,
                            {contract.EXAMPLES: np.array(examples, dtype=object)})

    def classify_rpc(self, examples: Sequence, signature: str = contract.CLASSIFY,
                     context=None) -> list[list[tuple[str, float]]]:
        """TF Serving's Classify RPC on ``examples`` (``tf.train.Example`` protos or their
        serialized bytes) with the ``classify`` signature; optional ``context`` Example (its
        features are shared by every example, an example's own features win).

        Returns:
          One list per example of ``(label, score)``, best first (the export's top-k).
        """
        request = classification_pb2.ClassificationRequest()
        self._fill_spec(request.model_spec, signature)
        rows = list(examples)
        if not rows:
            raise _invalid("examples must be a non-empty sequence")
        target = (request.input.example_list_with_context.examples if context is not None
                  else request.input.example_list.examples)
        for row in rows:
            example = tf.train.Example.FromString(row) if isinstance(row, bytes) else row
            target.add().CopyFrom(example)
        if context is not None:
            request.input.example_list_with_context.context.CopyFrom(context)
        response = self._call(self._prediction.Classify, request,
                              f"Classify(signature={signature!r})")
        self.last_version = response.model_spec.version.value
        return [[(c.label, c.score) for c in row.classes]
                for row in response.result.classifications]

    def top_labels(self, image_features, lon_lat) -> list[list[tuple[str, float]]]:
        """Top-k ``(label name, fused score)`` per row via the Classify RPC. Rows are checked
        first (lon and lat both NaN: no location, image-only; one NaN is an error)."""
        from csp_tf.warmup import serialize_examples

        coords = validate_lon_lat(lon_lat, allow_missing=True)
        feats = validate_image_features(image_features, coords.shape[0])
        return self.classify_rpc(serialize_examples(feats, coords))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "CSPServingClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
