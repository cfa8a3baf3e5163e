"""What the ingest writes after its Beam run: metadata.json, labels.txt and summary.json, from
the per-run counts the pipeline leaves in ``_ingest_stats/`` (and the Beam counters)."""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any, Dict, List, Optional, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from csp_tf import features as fk
from csp_tf.data import regions
from csp_tf.data.errors import DataError
from csp_tf.data.schema import SCHEMA_VERSION

NAMESPACE = "csp_tf.ingest"  # Beam metrics namespace of the ingest's counters
SHARD_SUFFIX = ".tfrecord.gz"
STATS_DIR = "_ingest_stats"


def write_outputs(output_dir: str, manifests: Sequence[Any], feature_dim: int,
            vocabulary: Optional[List[str]], fractions: Sequence[float], spec, elapsed: float,
            counters: Dict[str, int], options: PipelineOptions) -> Dict[str, Any]:
    stats_dir = FileSystems.join(output_dir, STATS_DIR)
    counts: Dict[str, int] = {}
    for line in _read_text(FileSystems.join(stats_dir, "counts-00000-of-00001.jsonl")).splitlines():
        key, value = json.loads(line)
        counts[key] = value
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
        "output_dir": output_dir,
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
