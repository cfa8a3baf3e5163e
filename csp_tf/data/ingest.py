"""Beam ingest: manifests (CSV / JSONL / Parquet) -> gzip TFRecord shards per split + dead letter.

    manifests ─ Read ─ ParseAndValidate ─┬─ (image rows) BatchElements ─ EmbedImages ─┐
                                         │                                          ├─ DedupeIds ─ AssignSplit
                                         └─ (feature rows) ─────────────────────────┘        │
          pretrain / val / test ── Encode ── WriteShards (by id)   train ── GroupByKey(label) ─ RankWithinClass
          every rejection ── dead_letter/rejected-*.jsonl           counts ── summary.json, metadata.json
          every written row ── FeatureStats (mean, std) ── metadata.json feature_stats

Every row that is read ends in exactly one place: a split or the dead letter, so
``rows_in == sum(rows_out) + sum(rejected)`` (checked after the run). Known problems are tagged
outputs of the DoFns (``validation.REASONS``); anything unexpected is caught per row by
``ParDo.with_exception_handling`` and dead-lettered as ``unexpected_error``, so one odd row never
stops a long job. The layout written is the data-root contract of docs/architecture.md.

Runs on the DirectRunner with 2 worker processes by default; any Beam option passes through
(``--runner=DataflowRunner --project=... --region=... --temp_location=gs://...``), see docs/data.md.

Failures say what, where and what to do (docs/reliability.md): damaged manifests and a bad
output path are found before the pipeline starts (``manifests.check_manifest``,
``outputs.prepare_staging``); a failure inside the runner is unwrapped from the worker's
traceback text (``explain_pipeline_error``). Everything is written to a temporary sibling of
the data root, which replaces the old root only after a successful run (``outputs.publish``):
a failed or killed ingest leaves the previous data root as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from csp_tf import diskspace, locks
from csp_tf import features as fk
from csp_tf.data import splits
from csp_tf.data.errors import DataError, first_line as _first_line
from csp_tf.data.manifests import ManifestFile, ReadManifests, find_manifests
from csp_tf.data.outputs import (SHARD_SUFFIX, STATS_DIR, discard_staging,
                                 prepare_staging, publish, query_counters, write_outputs)
from csp_tf.data.ingest_transforms import (
    CLASS_COUNTS, REJECTED, UNEXPECTED, DeadLetterFn, EncodeFn, FeatureStatsFn, KeepFirstFn,
    ParseAndValidateFn, RankWithinClassFn, WriteShardFn, _class_stat, _key_by_id, _key_by_label,
    _key_by_shard, _label_of, _no_backbone, _rejected_stat, _route_images, _split_index, _stat,
    assign_split, unexpected_rejection)

LOG = logging.getLogger("csp_tf.data.ingest")

# The DirectRunner defaults: two worker processes. ``in_process=True`` swaps in the in-memory
# mode (one process), which starts in a fraction of the time for tiny test inputs.
DEFAULT_BEAM_ARGS = ("--runner=DirectRunner", "--direct_num_workers=2",
                     "--direct_running_mode=multi_processing")
IN_PROCESS_BEAM_ARGS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")

# ----- the public entry point -------------------------------------------------------------------
def run_ingest(manifest: Union[str, Sequence[str]], output_dir: str, feature_dim: int,
               class_names: Optional[Sequence[str]] = None, num_shards: int = 4,
               split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
               beam_args: Optional[Sequence[str]] = None, backbone: Optional[str] = None,
               backbone_weights: Optional[str] = None, image_size: int = 224,
               check_duplicate_ids: bool = True, in_process: bool = False,
               overwrite: bool = False, batch_size: int = 32) -> Dict[str, Any]:
    """Runs the ingest pipeline and writes the data root; returns the summary dict.

    Args:
      manifest: a path or glob (or a list of them) of ``.csv``, ``.jsonl`` or ``.parquet``
        manifests (``.csv.gz`` / ``.jsonl.gz`` too); any Beam filesystem (``gs://...``).
      output_dir: the data root to write (docs/architecture.md layout).
      feature_dim: F, the image-feature width every row must have.
      class_names: the class vocabulary in index order; rows whose label is not in it are
        rejected (``unknown_label``). None: the sorted distinct labels of the valid rows.
      num_shards: TFRecord files per split (0: let the runner decide).
      split_fractions: (train, val, test) fractions of the labeled rows, summing to 1.
      beam_args: Beam pipeline options, e.g. ``["--runner=DataflowRunner", ...]``; they
        override the DirectRunner defaults (2 worker processes).
      backbone / backbone_weights / image_size: how ``image_path`` rows become features
        (``csp_tf.data.backbone``); required only when the manifest has image rows.
      check_duplicate_ids: reject rows whose id repeats (``duplicate_id``), keeping the first.
      in_process: run the DirectRunner in one process (tests and tiny inputs).
      overwrite: replace an existing data root at ``output_dir`` instead of refusing; the old
        root stays untouched until the new one is complete (then they are swapped).
      batch_size: images per backbone forward pass (upper bound for ``beam.BatchElements``).

    Returns:
      The summary also written to ``summary.json``: ``rows_in``, ``rows_out`` per split,
      ``rejected`` per reason, files, timings and the Beam counters.

    Raises:
      DataError: a missing manifest, a bad option, an unusable backbone, a failed pipeline.
    """
    if not isinstance(feature_dim, int) or isinstance(feature_dim, bool) or feature_dim <= 0:
        raise DataError(f"feature_dim={feature_dim!r} must be a positive integer")
    if not isinstance(num_shards, int) or num_shards < 0:
        raise DataError(f"num_shards={num_shards!r} must be an integer >= 0 (0 = runner decides)")
    fractions = splits.check_fractions(split_fractions)
    vocabulary = _check_class_names(class_names)
    manifests = find_manifests(manifest)
    options = make_pipeline_options(beam_args, in_process)
    spec = None
    if backbone:
        from csp_tf.data.backbone import check_backbone  # TF/Keras only when images are used

        spec = check_backbone(backbone, backbone_weights, image_size, feature_dim)
    # One ingest per data root: a second one is refused naming this one (csp_tf.locks).
    with _root_lock(output_dir):
        staging = prepare_staging(output_dir, overwrite)

        LOG.info("ingest: %d manifest file(s) -> %s (%s)", len(manifests), output_dir,
                 options.get_all_options().get("runner"))
        start = time.time()
        try:
            result = _run_pipeline(options, manifests, staging, feature_dim, vocabulary,
                                   fractions, num_shards, spec, check_duplicate_ids, batch_size)
            summary = write_outputs(staging, manifests, feature_dim, vocabulary, fractions, spec,
                                    time.time() - start, query_counters(result), options,
                                    final_dir=output_dir)
            if "://" not in staging:
                diskspace.fsync_tree(staging)  # durable before the rename publishes it
            publish(staging, output_dir)
        except BaseException as exc:
            full = disk_full_error(exc, staging, output_dir)  # before the partial files go
            discard_staging(staging)
            if full is not None:
                raise full from exc
            raise
    LOG.info("ingest: %d rows in %.1f s (%.0f rows/s); out %s; rejected %s", summary["rows_in"],
             summary["elapsed_s"], summary["rows_per_s"], summary["rows_out"],
             summary["rejected"] or "none")
    return summary


@contextlib.contextmanager
def _root_lock(output_dir: str) -> Iterator[None]:
    try:
        lock = locks.acquire(output_dir, "csp-tf ingest")
    except locks.LockHeldError as exc:
        raise DataError(str(exc)) from None
    try:
        yield
    finally:
        lock.release()


def disk_full_error(exc: BaseException, staging: str, output_dir: str) -> Optional[DataError]:
    """A DataError naming the path and the space when ``exc`` (or a worker's traceback text in
    it) is ENOSPC / EDQUOT; None for any other failure."""
    text = "\n".join(filter(None, (str(exc), _chain_text(exc))))
    if not diskspace.is_disk_full(exc) and not diskspace.mentions_disk_full(text):
        return None
    written = diskspace.tree_size(staging) if "://" not in staging else None
    return DataError(diskspace.disk_full_message(
        "the ingest", staging, written=written,
        kept=f"the previous data root at {output_dir!r} (if any) is unchanged and the partial "
             f"output is removed"))


# ----- inputs and options -----------------------------------------------------------------------
def make_pipeline_options(beam_args: Optional[Sequence[str]], in_process: bool) -> PipelineOptions:
    """DirectRunner defaults + user Beam args (later ones win); DataError on bad options."""
    user = [str(a) for a in (beam_args or [])]
    options = PipelineOptions([*DEFAULT_BEAM_ARGS, *(IN_PROCESS_BEAM_ARGS if in_process else ()),
                               *user])
    try:
        known = options.get_all_options(retain_unknown_options=False)
        with_unknown = options.get_all_options(retain_unknown_options=True)
    except SystemExit:  # argparse reports a bad value (e.g. a wrong choice) and exits
        raise DataError(f"bad Beam option in {' '.join(user) or '(defaults)'}; "
                        f"see `python -m apache_beam.examples.wordcount --help` for the options") from None
    unknown = sorted(set(with_unknown) - set(known))
    if unknown:
        raise DataError(f"unknown Beam option(s): {', '.join('--' + u for u in unknown)}")
    return options


def _check_class_names(class_names: Optional[Sequence[str]]) -> Optional[List[str]]:
    if class_names is None:
        return None
    names = [str(c).strip() for c in class_names]
    if not names or any(not n for n in names):
        raise DataError("class_names must be a non-empty list of non-empty names")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"class_names repeat: {', '.join(dup[:5])}")
    return names


def _run_pipeline(options: PipelineOptions, manifests: Sequence[ManifestFile], staging: str,
                  feature_dim: int, vocabulary: Optional[List[str]], fractions: Sequence[float],
                  num_shards: int, spec, check_duplicate_ids: bool, batch_size: int):
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, manifests, staging, feature_dim, vocabulary, fractions,
                   num_shards, spec, check_duplicate_ids, batch_size)
    try:
        result = pipeline.run()
        state = result.wait_until_finish()
    except Exception as exc:
        raise explain_pipeline_error(exc, manifests) from exc
    if str(state) not in ("DONE", "PipelineState.DONE"):
        raise DataError(f"the Beam pipeline ended in state {state}; see the runner's log, fix the "
                        f"cause and run again")
    return result


# ----- turning a runner's failure into one line ---------------------------------------------
_EXC_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Invalid|Exit|Interrupt)"
                       r"\w*): (.+)$")
_STEP = re.compile(r"\[while running '([^']+)'\]")


def explain_pipeline_error(exc: BaseException, manifests: Sequence[ManifestFile]) -> DataError:
    """A DataError whose one line says what failed, in which file or step, and what to do.

    Multi-process runners wrap a worker's exception in ``RuntimeError: Traceback ...`` text;
    the innermost ``SomeError: message`` line of that text is the cause, and the
    ``[while running 'Step']`` note the step. A failed read step is narrowed to its file by
    reading the manifests of that format again here (``find_unreadable_manifest``).
    """
    text = "\n".join(filter(None, (str(exc), _chain_text(exc))))
    cause = _root_cause(text) or f"{type(exc).__name__}: {_first_line(exc)}"
    step = next(reversed(_STEP.findall(text)), None)
    match = re.search(r"Read\[(csv|jsonl|parquet)\]", step or text)
    culprit = match and find_unreadable_manifest([m for m in manifests if m.fmt == match.group(1)])
    if culprit is not None:
        path, why = culprit
        return DataError(f"the ingest failed reading manifest {path!r}: {why}; fix or re-export "
                         f"that file and run again")
    where = f" in step {step!r}" if step else ""
    return DataError(f"the Beam pipeline failed{where}: {cause}; fix the cause named here "
                     f"(or re-run with --in-process for the full traceback) and run again")


def _chain_text(exc: BaseException) -> str:
    parts, seen, cur = [], set(), exc.__cause__ or exc.__context__
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def _root_cause(text: str) -> Optional[str]:
    """The last ``Type: message`` line that is not just a wrapper of another traceback."""
    found = None
    for match in filter(None, map(_EXC_LINE.match, text.splitlines())):
        message = match.group(2).strip()
        if message and not message.startswith("Traceback"):
            found = f"{match.group(1).split('.')[-1]}: {_STEP.sub('', message).strip()}"
    return found


def find_unreadable_manifest(manifests: Sequence[ManifestFile]) -> Optional[Tuple[str, str]]:
    """(path, reason) of the first manifest that cannot be read to its end, else None."""
    for manifest in manifests:
        try:
            if manifest.fmt == "parquet":
                import pyarrow.parquet as pq

                with FileSystems.open(manifest.path,
                                      compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    pq.read_table(f)
            else:
                with FileSystems.open(manifest.path) as f:
                    while f.read(1 << 20):
                        pass
        except Exception as err:
            return manifest.path, f"{type(err).__name__}: {_first_line(err)}"
    return None


# ----- the pipeline -----------------------------------------------------------------------------
def build_pipeline(pipeline: beam.Pipeline, manifests: Sequence[ManifestFile], output_dir: str,
                   feature_dim: int, vocabulary: Optional[List[str]],
                   fractions: Sequence[float], num_shards: int, spec, check_duplicate_ids: bool,
                   batch_size: int = 32) -> None:
    """Adds the ingest transforms to ``pipeline`` (separate from running it, for tests)."""
    raw = pipeline | "ReadManifests" >> ReadManifests(manifests)
    checked = raw | "ParseAndValidate" >> beam.ParDo(
        ParseAndValidateFn({m.path: m.header for m in manifests}, feature_dim,
                           frozenset(vocabulary) if vocabulary is not None else None)
    ).with_exception_handling(main_tag="valid", dead_letter_tag=UNEXPECTED)
    rejected = [checked[REJECTED], checked[UNEXPECTED] | "UnexpectedParse" >> beam.Map(unexpected_rejection)]

    with_features, needs_image = checked["valid"] | "RouteImages" >> beam.Partition(_route_images, 2)
    if spec is not None:
        from csp_tf.data.backbone import EmbedImagesFn

        embedded = (needs_image
                    | "BatchImages" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
                    | "EmbedImages" >> beam.ParDo(EmbedImagesFn(spec)).with_outputs(REJECTED, main="embedded"))
        rejected.append(embedded[REJECTED])
        records = (with_features, embedded["embedded"]) | "JoinImages" >> beam.Flatten()
    else:
        rejected.append(needs_image | "NoBackbone" >> beam.Map(_no_backbone))
        records = with_features

    if check_duplicate_ids:
        deduped = (records
                   | "KeyById" >> beam.Map(_key_by_id)
                   | "GroupById" >> beam.GroupByKey()
                   | "DedupeIds" >> beam.ParDo(KeepFirstFn()).with_outputs(REJECTED, main="unique"))
        rejected.append(deduped[REJECTED])
        records = deduped["unique"]

    (records
     | "FeatureStats" >> beam.CombineGlobally(FeatureStatsFn())
     | "StatsToJson" >> beam.Map(json.dumps)
     | "WriteFeatureStats" >> beam.io.WriteToText(
         FileSystems.join(output_dir, STATS_DIR, "feature_stats"), file_name_suffix=".json",
         num_shards=1))
    by_split = (records
                | "AssignSplit" >> beam.Map(assign_split, fractions)
                | "PartitionSplits" >> beam.Partition(_split_index, len(fk.SPLITS)))
    ranked = (by_split[fk.SPLITS.index("train")]
              | "KeyByLabel" >> beam.Map(_key_by_label)
              | "GroupByLabel" >> beam.GroupByKey()
              | "RankWithinClass" >> beam.ParDo(RankWithinClassFn()).with_outputs(CLASS_COUNTS, main="ranked"))

    if vocabulary is None:
        vocab = (records
                 | "Labels" >> beam.FlatMap(_label_of)
                 | "DistinctLabels" >> beam.Distinct()
                 | "CollectLabels" >> beam.combiners.ToList()
                 | "SortLabels" >> beam.Map(sorted))
    else:
        vocab = pipeline | "GivenLabels" >> beam.Create([list(vocabulary)])
    vocab_view = beam.pvalue.AsSingleton(vocab)

    stats = [raw | "CountIn" >> beam.Map(_stat, "rows_in"),
             ranked[CLASS_COUNTS] | "ClassCountStats" >> beam.Map(_class_stat)]
    for split in fk.SPLITS:
        split_records = ranked["ranked"] if split == "train" else by_split[fk.SPLITS.index(split)]
        encoded = split_records | f"Encode[{split}]" >> beam.ParDo(EncodeFn(split), vocab_view)
        if num_shards:  # rows -> shards and their order from the row id: same bytes every run
            shard_keys = pipeline | f"ShardKeys[{split}]" >> beam.Create(
                [(k, None) for k in range(num_shards)])  # every shard written, empty ones too
            ((encoded | f"KeyByShard[{split}]" >> beam.Map(_key_by_shard, num_shards),
              shard_keys)
             | f"AllShards[{split}]" >> beam.Flatten()
             | f"GroupShards[{split}]" >> beam.GroupByKey()
             | f"Write[{split}]" >> beam.ParDo(WriteShardFn(
                 FileSystems.join(output_dir, split), num_shards)))
        else:
            (encoded | f"Values[{split}]" >> beam.Values()
             | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                 FileSystems.join(output_dir, split, "part"), file_name_suffix=SHARD_SUFFIX,
                 compression_type=CompressionTypes.GZIP))
        stats.append(encoded | f"CountOut[{split}]" >> beam.Map(_stat, f"rows_out/{split}"))

    dead = tuple(rejected) | "AllRejected" >> beam.Flatten()
    (dead | "DeadLetterJson" >> beam.ParDo(DeadLetterFn())
     | "WriteDeadLetter" >> beam.io.WriteToText(
         FileSystems.join(output_dir, "dead_letter", "rejected"), file_name_suffix=".jsonl"))
    stats.append(dead | "CountRejected" >> beam.Map(_rejected_stat))

    (tuple(stats) | "AllStats" >> beam.Flatten()
     | "SumStats" >> beam.CombinePerKey(sum)
     | "StatsJson" >> beam.Map(json.dumps)
     | "WriteStats" >> beam.io.WriteToText(FileSystems.join(output_dir, STATS_DIR, "counts"),
                                           file_name_suffix=".jsonl", num_shards=1))
    (vocab | "VocabJson" >> beam.Map(json.dumps)
     | "WriteVocab" >> beam.io.WriteToText(FileSystems.join(output_dir, STATS_DIR, "vocabulary"),
                                           file_name_suffix=".json", num_shards=1))
