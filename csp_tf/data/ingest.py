"""Beam ingest: manifests (CSV / JSONL / Parquet) -> gzip TFRecord shards per split + dead letter.

    manifest ranges ─ Read[fmt]: parse, validate ─┬─ (image rows) EmbedImages ─┐
      (4 MB each)     rows by bucket of the id    │                            ├─ GroupByBucket ─ SettleBuckets
                                                  └────────────────────────────┘   (duplicate ids, splits)
          train ids ─ GroupByClass ─ RankWithinClass ─┐        labels ─ Vocabulary ─┐
          kept rows, rejections ──────────────────────┴─ GroupByShard ─ WriteShards ┴─ GroupStats ─ WriteStats
                                         (shard k of every split + its dead letter)   (_ingest_stats/)

Bucket k (``stable_hash("shard", id) % num_shards``) is shard k of every split, so one grouping
by bucket both drops duplicate ids and gathers each shard's rows. Elements are batches, not
rows (``ingest_transforms``), and the work is ``ingest_rows``, which benchmarks/ingest_limit.py
also runs without Beam. Every row that is read ends in exactly one place: a split or the dead
letter, so ``rows_in == sum(rows_out) + sum(rejected)`` (checked after the run). Known problems
are dead-lettered with their reason (``validation.REASONS``); anything unexpected on a row is
dead-lettered as ``unexpected_error``, so one odd row never stops a long job. The layout
written is the data-root contract of docs/architecture.md; the same manifest and shard count
give the same bytes on any runner.

Runs on the DirectRunner with 2 worker processes by default; any Beam option passes through
(``--runner=DataflowRunner --project=... --region=... --temp_location=gs://...``, or Beam's
DaskRunner with ``--dask_client_address=...``), see docs/pipeline.md.

Failures say what, where and what to do (docs/reliability.md): damaged manifests and a bad
output path are found before the pipeline starts (``manifests.check_manifest``,
``outputs.prepare_staging``); a failure inside the runner is unwrapped from the worker's
traceback text (``explain_pipeline_error``). Everything is written to a temporary sibling of
the data root, which replaces the old root only after a successful run (``outputs.publish``):
a failed or killed ingest leaves the previous data root as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from csp_tf import diskspace, locks
from csp_tf.data import splits
from csp_tf.data.errors import DataError, first_line as _first_line
from csp_tf.data import ingest_rows
from csp_tf.data.manifests import READ_BUNDLE_BYTES, ManifestFile, find_manifests
from csp_tf.data.outputs import (discard_staging, prepare_staging, publish, query_counters,
                                 write_outputs)
from csp_tf.data.ingest_transforms import (
    IMAGES, LABELS, LABELS_KEY, RANK, ROWS, STATS, WRITE, EmbedImagesFn, RankClassFn,
    ReadAndParseFn, SettleBucketFn, VocabularyFn, WriteBucketFn, WriteStatsFn, select)

LOG = logging.getLogger("csp_tf.data.ingest")

# The DirectRunner defaults: one process (in_memory). Its two-process mode (multi_processing)
# is no faster on this ingest (benchmarks/ingest_limit.py: 0.55 vs 0.57 of the limit at 10^5
# rows) and at 10^6 rows it dropped whole batches in two of three runs (the row-count check
# refused both; docs/benchmarks.md "Ingest vs its limit"). It stays available after `--`.
DEFAULT_BEAM_ARGS = ("--runner=DirectRunner", "--direct_num_workers=1",
                     "--direct_running_mode=in_memory")
IN_PROCESS_BEAM_ARGS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")
# Beam's DaskRunner (apache_beam.runners.dask.dask_runner.DaskRunner, or just DaskRunner).
DASK_RUNNER = "DaskRunner"

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
      num_shards: TFRecord files per split (0: one per 64 MB of manifest).
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
    """User Beam args over the defaults; DataError on bad options.

    The DirectRunner defaults (and ``in_process``) apply only when the runner is the
    DirectRunner: another runner rejects or ignores ``--direct_*`` options. For the DaskRunner
    its options (``--dask_client_address`` ...) are registered here, and only they may be
    given (``dask_pipeline_options``).
    """
    from csp_tf.data import beam_data_plane

    beam_data_plane.install()  # the multi-worker DirectRunner modes otherwise lose elements
    user = [str(a) for a in (beam_args or [])]
    runner = runner_name(user)
    direct = runner is None or runner.split(".")[-1] in ("DirectRunner", "BundleBasedDirectRunner",
                                                          "SwitchingDirectRunner")
    if in_process and not direct:
        raise DataError(f"--in-process runs the DirectRunner in this process; drop it to run on "
                        f"--runner={runner}")
    if is_dask(runner):
        _register_dask_options()
    defaults = [*DEFAULT_BEAM_ARGS, *(IN_PROCESS_BEAM_ARGS if in_process else ())] if direct else []
    options = PipelineOptions([*defaults, *user])
    try:
        known = options.get_all_options(retain_unknown_options=False)
        with_unknown = options.get_all_options(retain_unknown_options=True)
    except SystemExit:  # argparse reports a bad value (e.g. a wrong choice) and exits
        raise DataError(f"bad Beam option in {' '.join(user) or '(defaults)'}; "
                        f"see `python -m apache_beam.examples.wordcount --help` for the options") from None
    unknown = sorted(set(with_unknown) - set(known))
    if unknown:
        raise DataError(f"unknown Beam option(s): {', '.join('--' + u for u in unknown)}")
    if is_dask(runner):
        dask_pipeline_options(options)  # refuses options the DaskRunner cannot take
    return options


def runner_name(args: Sequence[str]) -> Optional[str]:
    """The ``--runner`` of Beam args (the last one given), or None."""
    name = None
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            name = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(args):
            name = args[i + 1]
    return name


def is_dask(runner: Optional[str]) -> bool:
    return bool(runner) and runner.split(".")[-1] == DASK_RUNNER


def _register_dask_options() -> None:
    try:  # importing the module registers DaskOptions with PipelineOptions
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError as exc:
        raise DataError(f"--runner=DaskRunner needs dask and distributed ({_first_line(exc)}): "
                        f"install them from requirements/lock.txt (scripts/install.sh)") from None


def dask_pipeline_options(options: PipelineOptions) -> PipelineOptions:
    """The options a Beam 2.59 DaskRunner is run with: its own (``--dask_*``) only.

    That runner passes every option that differs from its default, ``--runner`` included, to
    ``dask.distributed.Client(**options)``, which refuses the unknown ones; so the pipeline gets
    the runner as an object and only the Dask options. Any other option is a DataError here,
    before the run, naming it.
    """
    from apache_beam.runners.dask.dask_runner import DaskOptions

    given = options.get_all_options(drop_default=True)
    parser = argparse.ArgumentParser(add_help=False)
    DaskOptions._add_argparse_args(parser)  # noqa: SLF001 - the runner's own option list
    flags = {action.dest: action.option_strings[0] for action in parser._actions}  # noqa: SLF001
    other = sorted(k for k in given if k not in flags and k != "runner")
    if other:
        raise DataError(f"the DaskRunner takes only its --dask_* options; drop "
                        f"{', '.join('--' + k for k in other)}")
    return PipelineOptions([f"{flags[k]}={v}" for k, v in sorted(given.items()) if k in flags])


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
    dask = is_dask(options.get_all_options().get("runner"))
    if dask:  # see dask_pipeline_options
        from apache_beam.runners.dask.dask_runner import DaskRunner

        pipeline = beam.Pipeline(runner=DaskRunner(), options=dask_pipeline_options(options))
    else:
        pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, manifests, staging, feature_dim, vocabulary, fractions,
                   num_shards, spec, check_duplicate_ids, batch_size)
    result = None
    try:
        result = pipeline.run()
        state = result.wait_until_finish()
    except Exception as exc:
        raise explain_pipeline_error(exc, manifests) from exc
    finally:
        if dask and result is not None:
            result.client.close()  # the runner opens a client per run and never closes it
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
    """Adds the ingest transforms to ``pipeline`` (separate from running it, for tests).

    Elements are batches and every step is a plain ParDo, GroupByKey or Flatten
    (``ingest_transforms``); bucket k of ``num_shards`` buckets is shard k of every split.
    """
    buckets = num_shards or auto_num_shards(manifests)
    headers = {m.path: m.header for m in manifests}
    given = frozenset(vocabulary) if vocabulary is not None else None
    parsed = []
    for fmt in ("csv", "jsonl", "parquet"):
        parts = [part for m in manifests if m.fmt == fmt
                 for part in ingest_rows.plan_ranges(fmt, m.path, _size(m.path), READ_BUNDLE_BYTES)]
        if parts:
            parsed.append(pipeline
                          | f"Ranges[{fmt}]" >> beam.Create(parts)
                          | f"Read[{fmt}]" >> beam.ParDo(ReadAndParseFn(
                              headers, feature_dim, given, buckets, spec is not None, batch_size)))
    read = _flatten(parsed, "AllRows")
    produced = [read]
    if spec is not None:
        produced.append(read
                        | "ImageRows" >> beam.FlatMap(select, IMAGES)
                        | "EmbedImages" >> beam.ParDo(EmbedImagesFn(spec, buckets)))
    rows = _flatten(produced, "WithImages")

    settled = (rows
               | "Rows" >> beam.FlatMap(select, ROWS)
               | "GroupByBucket" >> beam.GroupByKey()
               | "SettleBuckets" >> beam.ParDo(SettleBucketFn(
                   headers, fractions, check_duplicate_ids, buckets, vocabulary is None)))
    ranks = (settled
             | "TrainIds" >> beam.FlatMap(select, RANK)
             | "GroupByClass" >> beam.GroupByKey()
             | "RankWithinClass" >> beam.ParDo(RankClassFn(buckets)))
    vocab = ((settled | "Labels" >> beam.FlatMap(select, LABELS),
              pipeline | "NoLabels" >> beam.Create([(LABELS_KEY, [])]))
             | "AllLabels" >> beam.Flatten()
             | "GroupLabels" >> beam.GroupByKey()
             | "Vocabulary" >> beam.ParDo(VocabularyFn(vocabulary, buckets)))

    steps = {"Read": rows, "Settle": settled, "Rank": ranks, "Vocabulary": vocab}
    written = (tuple(pc | f"ToWrite[{name}]" >> beam.FlatMap(select, WRITE) for name, pc in steps.items())
               | "AllToWrite" >> beam.Flatten()
               | "GroupByShard" >> beam.GroupByKey()
               | "WriteShards" >> beam.ParDo(WriteBucketFn(output_dir, buckets)))
    steps["Write"] = written
    (tuple(pc | f"ToStats[{name}]" >> beam.FlatMap(select, STATS)
           for name, pc in steps.items() if name != "Settle")
     | "AllStats" >> beam.Flatten()
     | "GroupStats" >> beam.GroupByKey()
     | "WriteStats" >> beam.ParDo(WriteStatsFn(output_dir)))


def _flatten(pcolls: Sequence[beam.PCollection], label: str) -> beam.PCollection:
    """Flatten, or the one PCollection itself (the DaskRunner's Flatten needs two or more)."""
    return pcolls[0] if len(pcolls) == 1 else tuple(pcolls) | label >> beam.Flatten()


def auto_num_shards(manifests: Sequence[ManifestFile]) -> int:
    """Shards per split when none are asked for: one per ``AUTO_SHARD_BYTES`` of manifest."""
    total = sum(max(_size(m.path), 0) for m in manifests)
    return int(min(ingest_rows.MAX_AUTO_SHARDS, max(1, -(-total // ingest_rows.AUTO_SHARD_BYTES))))


def _size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
