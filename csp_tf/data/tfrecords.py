"""Gzip TFRecord files written without TensorFlow, byte for byte as ``tf.io.TFRecordWriter``
with ``compression_type="GZIP"`` writes them (tests/csp_tf/data/test_data_tfrecords.py).

A record is ``uint64 length | masked crc32c(length) | data | masked crc32c(data)`` (little
endian), and the file is one zlib gzip stream at the default level with TensorFlow's settings
(window 15 + gzip header, memory level 9). The ingest's workers write their shards with this,
so they never import TensorFlow (seconds and hundreds of MB per worker process).
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterable

import google_crc32c

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_FLUSH_BYTES = 1 << 20


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def write_gzip_tfrecords(path: str, records: Iterable[bytes]) -> int:
    """Writes ``records`` to ``path`` (any Beam filesystem); returns how many were written."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)
    n, pending, size = 0, [], 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for record in records:
            length = _LENGTH.pack(len(record))
            pending.append(compressor.compress(b"".join((
                length, _CRC.pack(masked_crc32c(length)), record, _CRC.pack(masked_crc32c(record))))))
            size += len(pending[-1])
            n += 1
            if size >= _FLUSH_BYTES:
                f.write(b"".join(pending))
                pending, size = [], 0
        pending.append(compressor.flush())
        f.write(b"".join(pending))
    return n
