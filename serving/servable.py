"""One loaded SavedModel version and TF-Serving-style Predict on it (development server side).

:class:`Servable` wraps ``tf.saved_model.load`` of one version directory and answers a
``PredictRequest`` the way TF Serving's ``predict_util`` does: the same checks in the same
order, the same gRPC status codes and similar message text, so a client sees the same errors
from :mod:`serving.dev_server` as from ``tensorflow_model_server``. Errors are raised as
:class:`RpcAbort`; the server turns them into gRPC statuses.

Outputs are written like TF Serving's default ``Tensor::AsProtoField``: in the typed repeated
fields (``float_val``, ``int_val``, ``int64_val``, ``string_val``, ...), never in
``tensor_content``. ``ClassificationRequest`` is answered like ``classifier.cc`` (a
``tensorflow/serving/classify`` signature, ``inputs`` → ``classes``/``scores``); Regress is
rejected like ``regressor.cc`` rejects a signature that is not a regression one.
"""

from __future__ import annotations

import dataclasses
import os
import re

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, input_pb2,
                                     predict_pb2, regression_pb2)

from serving.contract import (CLASSES as CLASSIFY_CLASSES, CLASSIFY_INPUTS, CLASSIFY_METHOD,
                              REGRESS_METHOD, SCORES as CLASSIFY_SCORES,
                              SERVING_DEFAULT as DEFAULT_SIGNATURE)


# numpy dtype → the TensorProto repeated field Tensor::AsProtoField fills (tensor.cc ProtoHelper).
_PROTO_FIELD = {
    np.dtype(np.float32): "float_val", np.dtype(np.float64): "double_val",
    np.dtype(np.int32): "int_val", np.dtype(np.int16): "int_val", np.dtype(np.int8): "int_val",
    np.dtype(np.uint8): "int_val", np.dtype(np.uint16): "int_val",
    np.dtype(np.int64): "int64_val", np.dtype(np.uint32): "uint32_val",
    np.dtype(np.uint64): "uint64_val", np.dtype(np.bool_): "bool_val",
}

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


def tensor_proto_fields(value) -> tensor_pb2.TensorProto:
    """``value`` as a TensorProto with its values in the typed repeated field, as TF Serving's
    ``Tensor::AsProtoField`` writes Predict outputs (``float_val`` for float32, ``int_val`` for
    int32, ``string_val`` for strings, ...), not in ``tensor_content``."""
    array = np.asarray(value)
    proto = tensor_pb2.TensorProto()
    proto.dtype = tf.as_dtype(array.dtype if array.dtype.kind not in "OSU" else tf.string
                              ).as_datatype_enum
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]))
    flat = array.ravel()
    if array.dtype.kind in "OSU":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif array.dtype == np.float16:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif array.dtype in _PROTO_FIELD:
        getattr(proto, _PROTO_FIELD[array.dtype]).extend(flat.tolist())
    else:  # bfloat16, complex, ...: rare in this contract; let TF encode them
        proto.CopyFrom(tf.make_tensor_proto(array))
    return proto


def examples_from_input(model_input: input_pb2.Input) -> np.ndarray:
    """Serialized tf.Examples of a Classify/Regress ``Input``, as TF Serving's
    ``InputToSerializedExampleTensor``: ``example_list`` as is; ``example_list_with_context``
    as context bytes + example bytes (protobuf merge: the example's features win).

    Raises:
      RpcAbort: INVALID_ARGUMENT ``Input is empty.`` when there is no example.
    """
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        rows = [e.SerializeToString() for e in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = model_input.example_list_with_context
        context = with_context.context.SerializeToString()
        rows = [context + e.SerializeToString() for e in with_context.examples]
    else:
        rows = []
    if not rows:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    return np.array(rows, dtype=object)


def _check_batch(batch: int, max_batch_size: int | None) -> None:
    if max_batch_size and batch > max_batch_size:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"Task size {batch} is larger than "
                       f"maximum input batch size {max_batch_size}")


def _call(function, inputs: dict):
    """``function(**inputs)``; a TF runtime error becomes the RpcAbort of its status code."""
    try:
        return function(**inputs)
    except tf.errors.OpError as exc:
        code = _OP_ERROR_TO_GRPC.get(exc.error_code, grpc.StatusCode.INTERNAL)
        raise RpcAbort(code, _clean_tf_message(exc.message)) from exc


def _fill_spec(spec, model_name: str, version: int, signature: str) -> None:
    spec.name, spec.version.value, spec.signature_name = model_name, version, signature


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
        _check_batch(max(batch_sizes.values(), default=0), max_batch_size)
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
            outputs = _call(function, inputs)
        except (TypeError, ValueError) as exc:  # the function rejected the arguments
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, model_name, self.version, signature)
        for alias in wanted:
            response.outputs[alias].CopyFrom(tensor_proto_fields(outputs[alias].numpy()))
        return response

    def _signature_def(self, signature: str, method: str, kind: str):
        """The SignatureDef of a Classify/Regress request (TF Serving's Get*SignatureDef)."""
        if signature not in self.signature_defs.signature_def or signature not in self.functions:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                           f"No signature was found with the name: {signature}")
        signature_def = self.signature_defs.signature_def[signature]
        if signature_def.method_name != method:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                f"Expected {kind} signature method_name to be {method}. Was: "
                f"{signature_def.method_name}"))
        return signature_def

    def classify(self, request: classification_pb2.ClassificationRequest, model_name: str,
                 max_batch_size: int | None = None
                 ) -> classification_pb2.ClassificationResponse:
        """Runs a ``tensorflow/serving/classify`` signature on the request's tf.Examples.

        Raises:
          RpcAbort: INVALID_ARGUMENT for an unknown signature, one that is not a classification
            signature (TF Serving with ``--enable_signature_method_name_check``), empty input,
            a batch above ``max_batch_size`` or an InvalidArgumentError from the graph (e.g. a
            bad coordinate); FAILED_PRECONDITION when the signature lacks ``inputs`` or both
            ``classes`` and ``scores``.
        """
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature_def = self._signature_def(signature, CLASSIFY_METHOD, "classification")
        if len(signature_def.inputs) != 1:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "Expected one input Tensor.")
        if CLASSIFY_INPUTS not in signature_def.inputs:
            raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION,
                           "No classification inputs found in SignatureDef")
        keys = [k for k in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if k in signature_def.outputs]
        if not keys:
            raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION, (
                'Expected classification signature outputs to contain at least one of "classes" '
                'or "scores"'))
        examples = examples_from_input(request.input)
        _check_batch(len(examples), max_batch_size)
        outputs = _call(self.functions[signature], {CLASSIFY_INPUTS: tf.constant(examples)})
        classes = outputs[CLASSIFY_CLASSES].numpy() if CLASSIFY_CLASSES in keys else None
        scores = outputs[CLASSIFY_SCORES].numpy() if CLASSIFY_SCORES in keys else None
        for name, value in ((CLASSIFY_CLASSES, classes), (CLASSIFY_SCORES, scores)):
            if value is not None and (value.ndim != 2 or value.shape[0] != len(examples)):
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                    f"Expected {name} Tensor shape: [batch_size num_classes] with batch_size "
                    f"{len(examples)} but got {list(value.shape)}"))
        if classes is not None and scores is not None and classes.shape != scores.shape:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, (
                "Tensors class and score should match in dim_size(1). Got "
                f"{classes.shape[1]} vs. {scores.shape[1]}"))
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, model_name, self.version, signature)
        width = (classes if classes is not None else scores).shape[1]
        for i in range(len(examples)):
            row = response.result.classifications.add()
            for c in range(width):
                entry = row.classes.add()
                if classes is not None:
                    entry.label = classes[i, c].decode("utf-8", "replace")
                if scores is not None:
                    entry.score = float(scores[i, c])
        return response

    def regress(self, request: regression_pb2.RegressionRequest, model_name: str
                ) -> regression_pb2.RegressionResponse:
        """Regress: the csp model exports no ``tensorflow/serving/regress`` signature.

        Raises:
          RpcAbort: INVALID_ARGUMENT, always: an unknown signature, or (TF Serving's message
            with the method-name check on) one that is not a regression signature.
        """
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        try:
            self._signature_def(signature, REGRESS_METHOD, "regression")
        except RpcAbort as exc:
            raise RpcAbort(exc.code, exc.message + " (the csp model has no regression "
                           "signature; use Classify with signature_name 'classify', or "
                           "Predict)") from None
        raise RpcAbort(grpc.StatusCode.UNIMPLEMENTED,
                       "Regress is not implemented by the csp-tf DEVELOPMENT server")
