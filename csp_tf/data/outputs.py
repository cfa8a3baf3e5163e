"""Where and what the ingest writes: a staging sibling of the data root, swapped in on success
(``prepare_staging`` / ``publish``), and after the Beam run metadata.json, labels.txt and
summary.json, from the per-run counts the pipeline leaves in ``_ingest_stats/``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import posixpath
import shutil
import socket
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from csp_tf import features as fk
from csp_tf.data import regions
from csp_tf.data.errors import DataError, first_line as _first_line
from csp_tf.data.schema import SCHEMA_VERSION
from csp_tf.locks import pid_alive

LOG = logging.getLogger("csp_tf.data.outputs")
NAMESPACE = "csp_tf.ingest"  # Beam metrics namespace of the ingest's counters
SHARD_SUFFIX = ".tfrecord.gz"
STATS_DIR = "_ingest_stats"
# Every entry an ingest writes into a data root; only these are replaced by --overwrite.
ROOT_ENTRIES = (*fk.SPLITS, "dead_letter", STATS_DIR, "metadata.json", "summary.json", "labels.txt")
_STAGING_TAG = ".ingest-"


# ----- staging and the swap ---------------------------------------------------------------------
def prepare_staging(output_dir: str, overwrite: bool) -> str:
    """Checks ``output_dir`` and creates an empty staging sibling; returns its path.

    DataError (before any work): the path is a file, it holds a data root and ``overwrite`` is
    off, or the staging directory cannot be created (permissions, a file in the way).
    """
    if _is_local(output_dir) and os.path.isfile(output_dir):
        raise DataError(f"the output path {output_dir!r} is a file, not a directory: pass another "
                        f"--out or remove that file")
    existing = [n for n in ROOT_ENTRIES if FileSystems.exists(FileSystems.join(output_dir, n))]
    if existing and not overwrite:
        raise DataError(f"{output_dir!r} already holds a data root ({existing[0]}); "
                        f"pass overwrite=True (--overwrite) to replace it")
    _remove_stale_staging(output_dir)
    staging = _sibling(output_dir, "tmp")
    try:
        FileSystems.mkdirs(staging)
    except Exception as exc:
        raise DataError(f"cannot create the staging directory {staging!r} next to the output "
                        f"{output_dir!r} ({_first_line(exc)}): check that its parent is a writable "
                        f"directory") from None
    return staging


def publish(staging: str, output_dir: str) -> None:
    """Moves the finished data root from ``staging`` to ``output_dir``, replacing an old one.

    Local: one ``rename`` when nothing is there yet; otherwise the old root is renamed aside
    and the new one renamed in (two renames, no copy), or, when the directory also holds
    files that are not the ingest's, entry by entry. Other filesystems (gs://) have no
    directory rename: the old entries are deleted and the new files renamed (copied) in, only
    once the new root is complete.
    """
    if not _is_local(output_dir):
        _publish_remote(staging, output_dir)
        return
    if not os.path.exists(output_dir):
        os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
        os.rename(staging, output_dir)
        return
    old = _sibling(output_dir, "old")
    if set(os.listdir(output_dir)) <= set(ROOT_ENTRIES):
        os.rename(output_dir, old)
        os.rename(staging, output_dir)
    else:  # the directory holds the user's own files too: leave them where they are
        os.makedirs(old)
        for name in ROOT_ENTRIES:
            if os.path.lexists(os.path.join(output_dir, name)):
                os.rename(os.path.join(output_dir, name), os.path.join(old, name))
        for name in os.listdir(staging):
            os.rename(os.path.join(staging, name), os.path.join(output_dir, name))
        os.rmdir(staging)
    shutil.rmtree(old, ignore_errors=True)


def discard_staging(staging: str) -> None:
    """Removes a staging directory after a failure (best effort: the failure matters more)."""
    try:
        if _is_local(staging):
            shutil.rmtree(staging, ignore_errors=True)
        elif FileSystems.exists(staging):
            FileSystems.delete([staging])
    except Exception as exc:  # pragma: no cover - cleanup must not hide the real error
        LOG.warning("could not remove the staging directory %s: %s", staging, exc)


def _publish_remote(staging: str, output_dir: str) -> None:
    old = [FileSystems.join(output_dir, n) for n in ROOT_ENTRIES
           if FileSystems.exists(FileSystems.join(output_dir, n))]
    if old:
        FileSystems.delete(old)
    sources = sorted(m.path for m in FileSystems.match([FileSystems.join(staging, "**")])[0].metadata_list)
    prefix = staging.rstrip("/") + "/"
    targets = [FileSystems.join(output_dir, p[len(prefix):]) for p in sources]
    if sources:
        FileSystems.rename(sources, targets)
    discard_staging(staging)


def _sibling(output_dir: str, kind: str) -> str:
    """``<parent>/.<name>.ingest-<kind>-<host>-<pid>-<random>``: same filesystem, so renames work."""
    clean = output_dir.rstrip("/\\") or output_dir
    parent, name = (posixpath.split(clean) if not _is_local(clean) else os.path.split(os.path.abspath(clean)))
    tag = f".{name}{_STAGING_TAG}{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return FileSystems.join(parent, tag) if not _is_local(clean) else os.path.join(parent, tag)


def _remove_stale_staging(output_dir: str) -> None:
    """Deletes staging siblings left by a killed ingest on this host (its process is gone)."""
    if not _is_local(output_dir):
        return  # a killed remote run leaves its sibling; it is never read, delete it by hand
    parent, name = os.path.split(os.path.abspath(output_dir.rstrip("/\\")))
    if not os.path.isdir(parent):
        return
    host = socket.gethostname()
    for entry in os.listdir(parent):
        if not entry.startswith(f".{name}{_STAGING_TAG}"):
            continue
        parts = entry[len(f".{name}{_STAGING_TAG}"):].split("-")
        if len(parts) < 4 or "-".join(parts[1:-2]) != host or not parts[-2].isdigit():
            continue
        if not pid_alive(int(parts[-2])):
            LOG.info("removing %s, left by an interrupted ingest", entry)
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _is_local(path: str) -> bool:
    return "://" not in path


# ----- metadata.json, labels.txt, summary.json --------------------------------------------------
def write_outputs(output_dir: str, manifests: Sequence[Any], feature_dim: int,
                  vocabulary: Optional[List[str]], fractions: Sequence[float], spec, elapsed: float,
                  counters: Dict[str, int], options: PipelineOptions,
                  final_dir: Optional[str] = None) -> Dict[str, Any]:
    """Writes the root's JSON files into ``output_dir`` (the staging directory); paths in them
    are relative, and ``summary.json``'s ``output_dir`` is ``final_dir`` (where it will live)."""
    stats_dir = FileSystems.join(output_dir, STATS_DIR)
    counts: Dict[str, int] = dict(json.loads(line) for line in _read_text(
        FileSystems.join(stats_dir, "counts-00000-of-00001.jsonl")).splitlines())
    class_names = vocabulary if vocabulary is not None else json.loads(
        _read_text(FileSystems.join(stats_dir, "vocabulary-00000-of-00001.json")))

    rows_in = counts.get("rows_in", 0)
    rows_out = {s: counts.get(f"rows_out/{s}", 0) for s in fk.SPLITS}
    rejected = {k.split("/", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("rejected/")}
    if rows_in != sum(rows_out.values()) + sum(rejected.values()):
        raise DataError(f"internal error: rows_in={rows_in} but rows_out={rows_out} and "
                        f"rejected={rejected} (sum {sum(rows_out.values()) + sum(rejected.values())}); "
                        f"please report this")
    split_info = {}
    for split in fk.SPLITS:
        files = _list_files(FileSystems.join(output_dir, split, "part-*" + SHARD_SUFFIX))
        split_info[split] = {"rows": rows_out[split],
                             "files": [f"{split}/{posixpath.basename(p)}" for p, _ in files],
                             "bytes": [size for _, size in files]}
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "feature_dim": feature_dim,
        "num_classes": len(class_names),
        "class_names": class_names,
        "splits": split_info,
        "train_class_counts": [counts.get(f"train_class/{c}", 0) for c in class_names],
        "split_fractions": list(fractions),
        "regions": list(regions.REGIONS),
        "backbone": dataclasses.asdict(spec) if spec is not None else None,
        "manifests": [m.path for m in manifests],
        "feature_stats": json.loads(
            _read_text(FileSystems.join(stats_dir, "feature_stats-00000-of-00001.json"))),
    }
    dead_letter = [p for p, _ in _list_files(FileSystems.join(output_dir, "dead_letter", "rejected-*.jsonl"))]
    summary = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rejected": rejected,
        "rejected_total": sum(rejected.values()),
        "dead_letter": [posixpath.relpath(p, output_dir) if "://" not in p else p for p in dead_letter],
        "elapsed_s": round(elapsed, 3),
        "rows_per_s": round(rows_in / elapsed, 1) if elapsed > 0 else 0.0,
        "runner": options.get_all_options().get("runner"),
        "beam_counters": counters,
        "output_dir": final_dir or output_dir,
    }
    _write_text(FileSystems.join(output_dir, "metadata.json"), json.dumps(metadata, indent=2))
    _write_text(FileSystems.join(output_dir, "labels.txt"), "".join(f"{c}\n" for c in class_names))
    _write_text(FileSystems.join(output_dir, "summary.json"), json.dumps(summary, indent=2))
    FileSystems.delete([stats_dir])
    return summary


def query_counters(result) -> Dict[str, int]:
    """The pipeline's csp_tf.ingest counters, summed over steps ({} if the runner has none)."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # some runners do not report metrics synchronously
        return {}
    totals: Dict[str, int] = {}
    for counter in found:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return dict(sorted(totals.items()))


def _list_files(pattern: str) -> List[Tuple[str, int]]:
    matched = FileSystems.match([pattern])[0].metadata_list
    return sorted((m.path, m.size_in_bytes) for m in matched)


def _read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode("utf-8")


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))
