"""Reads a PyTorch ``state_dict`` checkpoint (``torch.save`` zip format) into numpy, without torch.

A ``.pth`` file is a zip: ``<prefix>/data.pkl`` (a pickle of the dict, whose tensors refer to
storages by key), ``<prefix>/data/<key>`` (each storage's raw little-endian bytes) and
``<prefix>/byteorder`` (absent in older files: little). Unpickling an arbitrary pickle runs
arbitrary code, so this reader resolves only the globals a plain state dict needs and refuses
every other one (the same allow-list idea as ``torch.load(weights_only=True)``):

* ``collections.OrderedDict`` (the dict and the tensors' empty backward-hook dicts),
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` (a tensor = storage + offset,
  size, stride),
* the typed storage classes (``torch.FloatStorage`` ...), only as persistent-id tags.

Each of them maps to a function here that builds numpy arrays; nothing from torch is imported
or called. Storages are read lazily and bounded by the size their tensors need.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from typing import IO, Any, Dict, Union

import numpy as np

# torch's typed storage classes -> numpy dtype (little-endian unless the file says otherwise).
STORAGE_DTYPES: Dict[str, str] = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "LongStorage": "i8",
    "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """The file is not a plain PyTorch state dict this reader accepts (the message says why)."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only its dtype is used."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None) -> np.ndarray:
    """A tensor view (offset, size, stride in elements) of a 1-D storage, copied out."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or offset < 0:
        raise CheckpointError(f"tensor with size {size}, stride {stride}, offset {offset}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= storage.size:
        raise CheckpointError(f"tensor of size {size} / stride {stride} at offset {offset} "
                              f"reaches past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
        writeable=False)
    return np.array(view)  # contiguous copy, native byte order below


def _rebuild_parameter(data: np.ndarray, requires_grad=False, backward_hooks=None) -> np.ndarray:
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(file)
        self._archive, self._prefix, self._order = archive, prefix, byteorder
        self._storages: Dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(f"refusing global {module}.{name}: a plain state dict holds "
                                  "only tensors in (Ordered)dicts") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unsupported persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            member = f"{self._prefix}/data/{key}"
            try:
                raw = self._archive.read(member)
            except KeyError:
                raise CheckpointError(f"storage {member!r} is missing from the archive") from None
            dtype = kind.dtype.newbyteorder("<" if self._order == "little" else ">")
            if len(raw) < int(numel) * dtype.itemsize:
                raise CheckpointError(f"storage {member!r} has {len(raw)} bytes, its tensor "
                                      f"needs {int(numel)} × {dtype.itemsize}")
            arr = np.frombuffer(raw, dtype=dtype, count=int(numel))
            self._storages[key] = arr.astype(kind.dtype.newbyteorder("="), copy=False)
        return self._storages[key]


def read_state_dict(source: Union[str, bytes, IO[bytes]]) -> Dict[str, np.ndarray]:
    """``{name: array}`` from a ``torch.save``'d state dict (a path, its bytes or a binary file).

    CheckpointError where the zip has no ``data.pkl``, the pickle asks for anything but the
    allow-listed globals, or the result is not a flat mapping of names to arrays.
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"not a PyTorch zip checkpoint ({exc}); the legacy non-zip "
                              "format is not supported") from None
    with archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError(f"expected one <prefix>/data.pkl in the archive, found {pkls}")
        prefix = pkls[0].split("/")[0]
        names = set(archive.namelist())
        order = (archive.read(f"{prefix}/byteorder").decode().strip()
                 if f"{prefix}/byteorder" in names else "little")
        if order not in ("little", "big"):
            raise CheckpointError(f"unknown byteorder {order!r}")
        with archive.open(pkls[0]) as f:
            state = _Unpickler(f, archive, prefix, order).load()
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
        raise CheckpointError("the checkpoint is not a flat {name: tensor} state dict")
    return dict(state)
