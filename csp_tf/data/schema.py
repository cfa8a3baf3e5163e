"""tf.Example encoding and parsing of the csp-tf schema (docs/architecture.md, docs/data.md).

Keys come from ``csp_tf.features``; this module owns their types and shapes:

| key | type | shape |
|---|---|---|
| id | bytes | [] |
| lon, lat | float | [] |
| image_features | float | [F] |
| label, class_rank, class_count | int64 | [] |
| region | bytes | [] |
| label_subset | float | [] |

``label_subset`` came after schema version 1's first release: it is parsed with default -1
(``NO_SUBSET``), so data roots written before it read unchanged.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Mapping

import numpy as np

from csp_tf import features as fk

SCHEMA_VERSION = 1


def encode_example(record: Mapping[str, Any]) -> bytes:
    """Serializes one record (keys of ``csp_tf.features``) to tf.Example bytes.

    ``record[image_features]`` is a float sequence of length F; ``label``, ``class_rank`` and
    ``class_count`` are ints (defaults -1, -1, 0 for unlabeled rows); ``id`` and ``region`` str;
    ``label_subset`` a float (default -1: no manifest subset).

    The bytes are written straight in the protobuf wire format of ``tensorflow.Example``
    (example.proto / feature.proto), so Beam workers that only move features never import
    TensorFlow (seconds and hundreds of MB per worker), and encoding costs a few microseconds.
    ``tests/csp_tf/data/test_data_schema.py`` checks the bytes with ``tf.io.parse_example`` and
    ``tf.train.Example``.
    """
    features = np.ascontiguousarray(record[fk.IMAGE_FEATURES], dtype="<f4").ravel().tobytes()
    floats = _THREE_FLOATS.pack(record[fk.LON], record[fk.LAT],  # float32, rounded as numpy does
                                record.get(fk.LABEL_SUBSET, fk.NO_SUBSET))
    # Features.feature is map<string, Feature>: each entry is a message {1: key, 2: value}.
    # Entries of a fixed length are a constant prefix and their packed value.
    body = b"".join((
        _entry(fk.ID, _bytes_feature(str(record[fk.ID]).encode("utf-8"))),
        _FLOAT_ENTRY[fk.LON], floats[:4],
        _FLOAT_ENTRY[fk.LAT], floats[4:8],
        _float_list_prefix(len(features)), features,
        _int64_entry(fk.LABEL, record.get(fk.LABEL, fk.UNLABELED)),
        _int64_entry(fk.CLASS_RANK, record.get(fk.CLASS_RANK, -1)),
        _int64_entry(fk.CLASS_COUNT, record.get(fk.CLASS_COUNT, 0)),
        _entry(fk.REGION, _bytes_feature(str(record.get(fk.REGION, "")).encode("utf-8"))),
        _FLOAT_ENTRY[fk.LABEL_SUBSET], floats[8:],
    ))
    return _TAG_1 + _varint(len(body)) + body  # Example.features = 1


# ----- protobuf wire format: length-delimited fields (wire type 2), packed repeated numbers -----
_TAG_1, _TAG_2, _TAG_3 = b"\x0a", b"\x12", b"\x1a"  # fields 1, 2, 3 with wire type 2
_FLOAT_ONE = _TAG_2 + b"\x06" + _TAG_1 + b"\x04"   # Feature.float_list {value: [one float]}


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return bytes((value,))
    value &= (1 << 64) - 1  # int64 two's complement: negative values take 10 bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _entry(key: str, feature: bytes) -> bytes:
    return _ld(_TAG_1, _KEYS[key] + _ld(_TAG_2, feature))


def _bytes_feature(value: bytes) -> bytes:
    return _ld(_TAG_1, _ld(_TAG_1, value))  # Feature.bytes_list = 1 {BytesList.value = 1}


def _float_feature(packed: bytes) -> bytes:
    return _ld(_TAG_2, _ld(_TAG_1, packed))  # Feature.float_list = 2 {packed float value = 1}


def _int64_feature(value: int) -> bytes:
    return _ld(_TAG_3, _ld(_TAG_1, _varint(int(value))))  # Feature.int64_list = 3 {packed = 1}


_KEYS = {key: _ld(_TAG_1, key.encode("utf-8")) for key in (
    fk.ID, fk.LON, fk.LAT, fk.IMAGE_FEATURES, fk.LABEL, fk.CLASS_RANK, fk.CLASS_COUNT, fk.REGION,
    fk.LABEL_SUBSET)}
_THREE_FLOATS = struct.Struct("<fff")
# the bytes of a one-float entry before its 4 value bytes
_FLOAT_ENTRY = {key: _entry(key, _FLOAT_ONE + bytes(4))[:-4] for key in (fk.LON, fk.LAT, fk.LABEL_SUBSET)}
_CACHE: Dict[Any, bytes] = {}


def _float_list_prefix(nbytes: int) -> bytes:
    """The bytes of the image_features entry before its ``nbytes`` packed float bytes."""
    prefix = _CACHE.get(("features", nbytes))
    if prefix is None:
        prefix = _entry(fk.IMAGE_FEATURES, _float_feature(bytes(nbytes)))[:-nbytes or None]
        _CACHE[("features", nbytes)] = prefix
    return prefix


def _int64_entry(key: str, value: int) -> bytes:
    """An int64 entry; the common small values are cached."""
    value = int(value)
    if -1 <= value < 1024:
        cached = _CACHE.get((key, value))
        if cached is None:
            cached = _CACHE[(key, value)] = _entry(key, _int64_feature(value))
        return cached
    return _entry(key, _int64_feature(value))


def feature_spec(feature_dim: int) -> Dict[str, Any]:
    """``tf.io.parse_example`` spec of the full schema for feature width ``feature_dim``."""
    import tensorflow as tf

    return {
        fk.ID: tf.io.FixedLenFeature([], tf.string),
        fk.LON: tf.io.FixedLenFeature([], tf.float32),
        fk.LAT: tf.io.FixedLenFeature([], tf.float32),
        fk.IMAGE_FEATURES: tf.io.FixedLenFeature([feature_dim], tf.float32),
        fk.LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=fk.UNLABELED),
        fk.CLASS_RANK: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        fk.CLASS_COUNT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        fk.REGION: tf.io.FixedLenFeature([], tf.string, default_value=""),
        fk.LABEL_SUBSET: tf.io.FixedLenFeature([], tf.float32, default_value=fk.NO_SUBSET),
    }


def decode_example(serialized: bytes, feature_dim: int) -> Dict[str, Any]:
    """Parses one serialized tf.Example to plain Python/numpy values (tests, debugging)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    f = example.features.feature
    features = np.asarray(f[fk.IMAGE_FEATURES].float_list.value, dtype=np.float32)
    if features.shape != (feature_dim,):
        raise ValueError(f"image_features has {features.shape[0]} values, expected {feature_dim}")
    return {
        fk.ID: f[fk.ID].bytes_list.value[0].decode("utf-8"),
        fk.LON: f[fk.LON].float_list.value[0],
        fk.LAT: f[fk.LAT].float_list.value[0],
        fk.IMAGE_FEATURES: features,
        fk.LABEL: f[fk.LABEL].int64_list.value[0],
        fk.CLASS_RANK: f[fk.CLASS_RANK].int64_list.value[0],
        fk.CLASS_COUNT: f[fk.CLASS_COUNT].int64_list.value[0],
        fk.REGION: f[fk.REGION].bytes_list.value[0].decode("utf-8"),
        fk.LABEL_SUBSET: (f[fk.LABEL_SUBSET].float_list.value[0] if fk.LABEL_SUBSET in f
                          else fk.NO_SUBSET),
    }
