"""One loaded SavedModel version and TF-Serving-style Predict on it (development server side).

:class:`Servable` wraps ``tf.saved_model.load`` of one version directory and answers a
``PredictRequest`` the way TF Serving's ``predict_util`` does: the same checks in the same
order, the same gRPC status codes and similar message text, so a client sees the same errors
from :mod:`serving.dev_server` as from ``tensorflow_model_server``. Errors are raised as
:class:`RpcAbort`; the server turns them into gRPC statuses.
"""

from __future__ import annotations

import dataclasses
import os
import re

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

DEFAULT_SIGNATURE = "serving_default"

_OP_ERROR_TO_GRPC = {code.value[0]: code for code in grpc.StatusCode}
_TF_NOISE = re.compile(r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>|"
                       r"\s*\[\[\{\{node .*\}\}\]\].*)$")


class RpcAbort(Exception):
    """A request that must be answered with a gRPC error status."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _dtype_name(enum: int) -> str:
    """TensorFlow's C++ spelling of a DataType enum (``float``, ``double``, ``string``)."""
    try:
        return types_pb2.DataType.Name(enum)[len("DT_"):].lower()
    except ValueError:
        return f"invalid dtype {enum}"


def _shape_text(shape: tf.TensorShape) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape.as_list()) + "]"


def _clean_tf_message(message: str) -> str:
    """The useful lines of a TF runtime error (drops the eager 'Graph execution error' frame)."""
    lines = [ln for ln in message.splitlines() if ln.strip() and not _TF_NOISE.match(ln)]
    return "\n".join(lines).strip() or message.strip()


def _braced(names: set[str] | list[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"


def read_signature_defs(version_dir: str) -> get_model_metadata_pb2.SignatureDefMap:
    """The ``serve`` MetaGraph's SignatureDefs, read from ``saved_model.pb`` as TF Serving does."""
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags]
    graph = (graphs or list(saved_model.meta_graphs))[0]
    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in graph.signature_def.items():
        result.signature_def[name].CopyFrom(signature)
    return result


@dataclasses.dataclass
class Servable:
    """A loaded version: its signature functions, their input specs and its SignatureDefs."""

    version: int
    path: str
    model: object  # what tf.saved_model.load returned; keeps the functions' resources alive
    functions: dict
    input_specs: dict[str, dict[str, tf.TensorSpec]]
    signature_defs: get_model_metadata_pb2.SignatureDefMap

    @classmethod
    def load(cls, version_dir: str, version: int) -> "Servable":
        """Loads ``version_dir`` with ``tf.saved_model.load`` (raises what the loader raises)."""
        model = tf.saved_model.load(version_dir, tags=["serve"])
        functions = dict(model.signatures)
        specs = {name: dict(fn.structured_input_signature[1]) for name, fn in functions.items()}
        return cls(version, version_dir, model, functions, specs, read_signature_defs(version_dir))

    def _inputs(self, signature: str, request: predict_pb2.PredictRequest,
                max_batch_size: int | None) -> dict[str, np.ndarray]:
        specs = self.input_specs[signature]
        sent, wanted = set(request.inputs), set(specs)
        if len(sent) != len(wanted):
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({_braced(sent)}) != len({_braced(wanted)}). Sent extra: "
                f"{_braced(sent - wanted)}. Missing but required: {_braced(wanted - sent)}."))
        if sent != wanted:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                f"input tensor alias not found in signature: {sorted(sent - wanted)[0]}. "
                f"Inputs expected to be in the set {_braced(wanted)}."))
        arrays = {}
        for index, key in enumerate(sorted(specs)):
            spec, proto = specs[key], request.inputs[key]
            if proto.dtype != spec.dtype.as_datatype_enum:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                    f"Expects arg[{index}] to be {_dtype_name(spec.dtype.as_datatype_enum)} but "
                    f"{_dtype_name(proto.dtype)} is provided (input '{key}' of signature "
                    f"'{signature}')"))
            try:
                array = tf.make_ndarray(proto)
            except Exception as exc:  # malformed TensorProto: content does not match its shape
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input '{key}': cannot decode the TensorProto: {exc}") from exc
            if not spec.shape.is_compatible_with(array.shape):
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                    f"input '{key}' of signature '{signature}' has shape {list(array.shape)} "
                    f"but the signature expects {_shape_text(spec.shape)}"))
            arrays[key] = array
        batch_sizes = {key: a.shape[0] for key, a in arrays.items() if a.ndim}
        if len(set(batch_sizes.values())) > 1:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                "Batching Run() input tensors must have equal 0th-dimension size; got "
                + ", ".join(f"{k}: {n}" for k, n in sorted(batch_sizes.items()))))
        batch = max(batch_sizes.values(), default=0)
        if max_batch_size and batch > max_batch_size:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {batch} is larger than maximum input batch size "
                           f"{max_batch_size}")
        return arrays

    def predict(self, request: predict_pb2.PredictRequest, model_name: str,
                max_batch_size: int | None = None) -> predict_pb2.PredictResponse:
        """Runs ``request`` on this version.

        Raises:
          RpcAbort: FAILED_PRECONDITION for an unknown signature (TF Serving's code), else
            INVALID_ARGUMENT for missing/extra inputs, a wrong dtype or shape, unequal or too
            large batches, an unknown output filter, or an InvalidArgumentError from the graph.
        """
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        function = self.functions.get(signature)
        if function is None:
            raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION,
                           f'Serving signature key "{signature}" not found.')
        inputs = self._inputs(signature, request, max_batch_size)
        output_keys = set(function.structured_outputs)
        wanted = list(request.output_filter) or sorted(output_keys)
        for alias in wanted:
            if alias not in output_keys:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {_braced(output_keys)}."))
        try:
            outputs = function(**inputs)
        except tf.errors.OpError as exc:
            code = _OP_ERROR_TO_GRPC.get(exc.error_code, grpc.StatusCode.INTERNAL)
            raise RpcAbort(code, _clean_tf_message(exc.message)) from exc
        except (TypeError, ValueError) as exc:  # the function rejected the arguments
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model_name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature
        for alias in wanted:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
        return response
