"""Versions of one model under a base path: discover, load, warm up, swap, unload, resolve.

The development server's stand-in for TF Serving's ``FileSystemStoragePathSource`` +
``AspiredVersionsManager`` with the ``latest { num_versions }`` policy:

* a version is an integer-named directory ``<base>/<version>/`` holding ``saved_model.pb``;
  anything else (``.staging-*``, a directory still being copied without its
  ``saved_model.pb``) is ignored;
* the newest ``num_versions`` are aspired; each is loaded (and warmed up from
  ``assets.extra/tf_serving_warmup_requests``) *before* it is published, and the published map
  is replaced in one assignment, so a request sees either the old set or the new one;
* older versions are unloaded only once an aspired one is available (availability preserving);
* a failed load is retried on later polls, at most ``max_load_attempts`` times in all.
"""

from __future__ import annotations

import logging
import os
import re
import threading

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from csp_tf import warmup
from serving import contract
from serving.servable import RpcAbort, Servable

State = get_model_status_pb2.ModelVersionStatus.State
logger = logging.getLogger("serving.dev_server")


MAX_VERSION = 2**63 - 1  # ModelSpec.version and ModelVersionStatus.version are int64
_VERSION_NAME = re.compile(r"0|[1-9][0-9]*", re.ASCII)  # canonical ASCII digits only


def parse_version(name: str) -> int | None:
    """The version a directory name stands for, or None when it is not one.

    Only canonical ASCII integers in int64 range count (``12``; not ``012``, not ``²`` or
    ``١٢`` whose ``str.isdigit()`` is true, not ``2**63``), as TF Serving's file-system source
    parses version directories with ``safe_strto64`` and skips the rest.
    """
    if not _VERSION_NAME.fullmatch(name):
        return None
    version = int(name)
    return version if version <= MAX_VERSION else None


def list_versions(base_path: str) -> list[int]:
    """Complete versions under ``base_path``: integer-named directories with saved_model.pb.

    Any other name is ignored (see :func:`parse_version`); one odd name never stops the scan.
    """
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(v for v, name in ((parse_version(n), n) for n in names)
                  if v is not None and os.path.isfile(os.path.join(base_path, name, "saved_model.pb")))


def error_code_of(exc: BaseException) -> int:
    """The tensorflow.error.Code a load failure reports in GetModelStatus, as TF Serving would.

    A TF OpError keeps its own code; an unparsable ``saved_model.pb`` is DATA_LOSS (TF's
    ReadBinaryProto); a missing file NOT_FOUND; a failed warmup request its gRPC code; else
    UNKNOWN.
    """
    if isinstance(exc, RpcAbort):
        return exc.code.value[0]
    if isinstance(exc, RuntimeError) and isinstance(exc.__cause__, RpcAbort):
        return exc.__cause__.code.value[0]
    error_code = getattr(exc, "error_code", None)
    if isinstance(error_code, int):
        return error_code
    if isinstance(exc, FileNotFoundError):
        return grpc.StatusCode.NOT_FOUND.value[0]
    if isinstance(exc, OSError) and "parse" in str(exc).lower():
        return grpc.StatusCode.DATA_LOSS.value[0]
    return grpc.StatusCode.UNKNOWN.value[0]


def run_warmup(servable: Servable, model_name: str) -> int:
    """Replays the version's warmup file (if any) on ``servable``; returns the records replayed.

    Raises:
      RuntimeError: more than 1000 records, a record that is not a PredictLog, or a request that
        fails. TF Serving fails the load in these cases too.
    """
    path = os.path.join(servable.path, warmup.WARMUP_FILE)
    if not os.path.isfile(path):
        return 0
    logs = warmup.read_warmup_requests(path)
    if len(logs) > warmup.MAX_WARMUP_RECORDS:
        raise RuntimeError(f"{path}: {len(logs)} warmup records, more than the "
                           f"{warmup.MAX_WARMUP_RECORDS} TF Serving allows")
    for i, log in enumerate(logs):
        if log.WhichOneof("log_type") != "predict_log":
            raise RuntimeError(f"{path}: record {i} is a {log.WhichOneof('log_type')}; the "
                               "development server replays predict_log records only")
        try:
            servable.predict(log.predict_log.request, model_name)
        except RpcAbort as exc:
            raise RuntimeError(f"{path}: warmup record {i} failed: {exc.message}") from exc
    return len(logs)


class ModelManager:
    """Loaded versions of ``model_name`` under ``base_path`` (see the module docstring).

    Args:
      base_path: directory of version directories.
      model_name: the name requests must use.
      num_versions: how many of the newest versions stay loaded (TF Serving's default is 1).
      version_labels: label → version (ModelSpec.version_label routing, e.g. stable/canary).
      enable_warmup: replay ``assets.extra/tf_serving_warmup_requests`` before publishing.
      max_load_attempts: attempts per version before it is left in END with its error.
    """

    def __init__(self, base_path: str, model_name: str = contract.MODEL_NAME,
                 num_versions: int = 1, version_labels: dict[str, int] | None = None,
                 enable_warmup: bool = True, max_load_attempts: int = 3):
        if num_versions < 1:
            raise ValueError(f"num_versions must be >= 1, got {num_versions}")
        self.base_path = base_path
        self.model_name = model_name
        self.num_versions = num_versions
        self.version_labels = dict(version_labels or {})
        self.enable_warmup = enable_warmup
        self.max_load_attempts = max_load_attempts
        self._servables: dict[int, Servable] = {}  # replaced, never mutated: readers need no lock
        # version -> (State, tensorflow.error.Code, error message); OK (0) unless a load failed
        self._states: dict[int, tuple[int, int, str]] = {}
        self._attempts: dict[int, int] = {}
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Loading -------------------------------------------------------------------------------
    def _load(self, version: int) -> Servable | None:
        self._attempts[version] = self._attempts.get(version, 0) + 1
        self._states[version] = (State.LOADING, 0, "")
        path = os.path.join(self.base_path, str(version))
        logger.info("[DEVELOPMENT server] loading %s version %d from %s (attempt %d)",
                    self.model_name, version, path, self._attempts[version])
        try:
            servable = Servable.load(path, version)
            replayed = run_warmup(servable, self.model_name) if self.enable_warmup else 0
        except Exception as exc:  # a broken export must not take the server down
            error = f"Loading servable {self.model_name} version {version} failed: {exc}"
            logger.error("[DEVELOPMENT server] %s", error)
            self._states[version] = (State.END, error_code_of(exc), error)
            return None
        logger.info("[DEVELOPMENT server] %s version %d AVAILABLE (%d warmup requests replayed)",
                    self.model_name, version, replayed)
        return servable

    def poll_once(self) -> None:
        """One pass: load the aspired versions that are missing, then unload the rest."""
        with self._poll_lock:
            aspired = list_versions(self.base_path)[-self.num_versions:]
            for version in sorted(aspired, reverse=True):
                if (version in self._servables or self._stop.is_set()
                        or self._attempts.get(version, 0) >= self.max_load_attempts):
                    continue
                self._states.setdefault(version, (State.START, 0, ""))
                servable = self._load(version)
                if servable is not None:
                    self._servables = {**self._servables, version: servable}
                    self._states[version] = (State.AVAILABLE, 0, "")
            if not any(v in self._servables for v in aspired):
                return  # keep serving what we have until a new version is available
            for version in sorted(set(self._servables) - set(aspired)):
                self._states[version] = (State.UNLOADING, 0, "")
                self._servables = {v: s for v, s in self._servables.items() if v != version}
                self._states[version] = (State.END, 0, "")
                logger.info("[DEVELOPMENT server] %s version %d unloaded", self.model_name,
                            version)

    def _poll_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll_once()
            except Exception:  # keep polling; the next pass may succeed
                logger.exception("[DEVELOPMENT server] version poll failed")

    def start_polling(self, interval_s: float) -> None:
        """Polls ``base_path`` every ``interval_s`` seconds in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, args=(interval_s,),
                                            name="csp-dev-server-poll", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float | None = 10.0) -> None:
        """Stops polling (waits for a load in progress up to ``timeout_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # Queries -------------------------------------------------------------------------------
    @property
    def available_versions(self) -> list[int]:
        return sorted(self._servables)

    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable a request's ModelSpec names (latest, a version, or a version label).

        Raises:
          RpcAbort: NOT_FOUND for an unknown model or a version that is not loaded,
            INVALID_ARGUMENT for an unknown version label (TF Serving's codes and messages).
        """
        servables = self._servables
        if spec.HasField("version") or spec.version_label:
            if spec.HasField("version"):
                version = spec.version.value
            elif spec.version_label in self.version_labels and spec.name == self.model_name:
                version = self.version_labels[spec.version_label]
            else:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Unrecognized servable version label: {spec.version_label}")
            if spec.name != self.model_name or version not in servables:
                raise RpcAbort(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({spec.name}, {version})")
            return servables[version]
        if spec.name != self.model_name or not servables:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND,
                           f"Servable not found for request: Latest({spec.name})")
        return servables[max(servables)]

    def model_status(self, spec: model_pb2.ModelSpec
                     ) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatus: every version seen (newest first), or the one requested.

        Raises:
          RpcAbort: NOT_FOUND when the model or the requested version is unknown.
        """
        states = dict(self._states)
        if spec.name != self.model_name or not states:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND,
                           f"Could not find any versions of model {spec.name}")
        if spec.HasField("version"):
            if spec.version.value not in states:
                raise RpcAbort(grpc.StatusCode.NOT_FOUND, f"Could not find version "
                               f"{spec.version.value} of model {spec.name}")
            states = {spec.version.value: states[spec.version.value]}
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in sorted(states, reverse=True):
            state, code, error = states[version]
            status = response.model_version_status.add(version=version, state=state)
            status.status.error_code = code  # tensorflow.error.Code: OK, or the load's failure
            status.status.error_message = error
        return response
