"""The torch-free reader of PyTorch state dicts: tensors as torch stores them, and the pickle's
allow-list (nothing else is ever called)."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from csp_tf.torch_state_dict import CheckpointError, read_state_dict


def _str(s: str) -> bytes:  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:  # BININT
    return b"J" + struct.pack("<i", i)


def _tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, storage_type: str, numel: int, offset: int, size, stride) -> bytes:
    """The opcodes torch.save writes for one tensor: _rebuild_tensor_v2(storage, ...)."""
    pid = _tuple([_str("storage"), b"ctorch\n" + storage_type.encode() + b"\n", _str(key),
                  _str("cpu"), _int(numel)]) + b"Q"
    hooks = b"ccollections\nOrderedDict\n)R"
    args = _tuple([pid, _int(offset), _tuple(_int(s) for s in size),
                   _tuple(_int(s) for s in stride), b"\x89", hooks])
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def _checkpoint(entries, storages, byteorder=None) -> bytes:
    """A torch.save-style zip: archive/data.pkl + archive/data/<key> (+ archive/byteorder)."""
    pkl = b"\x80\x02}(" + b"".join(_str(k) + t for k, t in entries) + b"u."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        if byteorder:
            zf.writestr("archive/byteorder", byteorder)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def test_reads_offsets_strides_dtypes_and_shared_storages():
    floats = np.arange(12, dtype="<f4")
    longs = np.array([7, -3, 2**40], dtype="<i8")
    data = _checkpoint(
        [("w", _tensor("0", "FloatStorage", 12, 0, (3, 4), (4, 1))),
         ("w_t", _tensor("0", "FloatStorage", 12, 0, (4, 3), (1, 4))),    # a transposed view
         ("tail", _tensor("0", "FloatStorage", 12, 8, (4,), (1,))),       # an offset view
         ("n", _tensor("1", "LongStorage", 3, 0, (3,), (1,))),
         ("scalar", _tensor("1", "LongStorage", 3, 1, (), ()))],
        {"0": floats.tobytes(), "1": longs.tobytes()})
    sd = read_state_dict(data)
    np.testing.assert_array_equal(sd["w"], floats.reshape(3, 4))
    np.testing.assert_array_equal(sd["w_t"], floats.reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], floats[8:])
    np.testing.assert_array_equal(sd["n"], longs)
    assert sd["scalar"].shape == () and sd["scalar"] == -3
    assert sd["w"].dtype == np.float32 and sd["n"].dtype == np.int64


def test_big_endian_storages():
    data = _checkpoint([("x", _tensor("0", "DoubleStorage", 2, 0, (2,), (1,)))],
                       {"0": np.array([1.5, -2.25], ">f8").tobytes()}, byteorder="big")
    np.testing.assert_array_equal(read_state_dict(data)["x"], [1.5, -2.25])


def test_refuses_any_other_global_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.makedirs, (str(marker),)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing global (os|posix)\.makedirs"):
        read_state_dict(buf.getvalue())
    assert not marker.exists()


def test_tensor_past_its_storage_is_refused():
    data = _checkpoint([("w", _tensor("0", "FloatStorage", 4, 2, (2, 2), (2, 1)))],
                       {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(CheckpointError, match="reaches past its storage of 4 elements"):
        read_state_dict(data)


def test_short_or_missing_storage_and_non_zip_are_clear_errors():
    short = _checkpoint([("w", _tensor("0", "FloatStorage", 4, 0, (4,), (1,)))],
                        {"0": b"\0" * 8})
    with pytest.raises(CheckpointError, match="has 8 bytes, its tensor needs 4 × 4"):
        read_state_dict(short)
    missing = _checkpoint([("w", _tensor("9", "FloatStorage", 4, 0, (4,), (1,)))], {})
    with pytest.raises(CheckpointError, match="'archive/data/9' is missing"):
        read_state_dict(missing)
    with pytest.raises(CheckpointError, match="not a PyTorch zip checkpoint"):
        read_state_dict(b"\x80\x02}q\x00.")
