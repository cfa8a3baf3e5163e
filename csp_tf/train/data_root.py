"""One data path: ``DataRoot`` describes a stage's data, read once; ``stage_inputs`` builds
every stage's inputs from it (docs/architecture.md).

A ``DataRoot`` holds the splits (files, rows), the shapes, the class names and the ingest's
feature statistics. It comes from an ingested data root (``DataRoot.open``: metadata.json, read
once) or from a TFX ExampleGen examples artifact (``DataRoot.from_examples``: the
``<uri>/Split-<name>/*`` files a Trainer gets, shapes and statistics from its custom_config),
and the CLI, both TFX Trainers and the experiment protocol all call ``stage_inputs`` on it: the
same files in the same order give the same batches, whichever source described them.

The label rule, once: every labeled input (the balanced pre-training sampler, fine-tuning, the
image probe, validation, evaluation) holds only rows with ``label >= 0`` (``DataRoot.labeled``);
the label-free pre-training pool is every row of ``pretrain`` + ``train``, read into memory sorted
by id when it fits ``data.pretrain_in_memory_mb`` (default 1024: the batches then do not depend on
the file layout), else streamed in file order.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from csp_tf.configs import ConfigError, ExperimentConfig, FinetuneConfig
from csp_tf.data import reader, splits as label_splits
from csp_tf.train.inputs import Arrays, FeatureStats, StageInput, from_arrays, from_tfrecords

PRETRAIN_SPLITS = ("pretrain", "train")
POOL_KEYS = ("lon_lat", "image_features", "label", "id")  # what pre-training reads, and the id
_SPLIT_DIR = re.compile(r"Split-([^/\\]+)$")
_NO_ROWS_HINT = ("check its summary.json (rejected rows, the manifest's split column) and re-run "
                 "the ingest")


@dataclasses.dataclass
class Split:
    files: List[str]  # full paths, in reading order
    rows: Optional[int] = None  # None: counted on first use (an examples artifact)


@dataclasses.dataclass
class DataRoot:
    """What a stage knows about its data; split arrays are read on first use and kept."""

    source: str  # for messages: "the data root '...'" / "the examples artifact '...'"
    feature_dim: int
    num_classes: int
    class_names: List[str]
    splits: Dict[str, Split]
    feature_stats: Optional[FeatureStats] = None
    path: str = ""  # the data root directory ("" for an examples artifact)
    # Bytes the ingest wrote per file (reader.check_files); empty: files only need to exist.
    sizes: Dict[str, int] = dataclasses.field(default_factory=dict)
    _arrays: Dict[str, Arrays] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, data_root: str) -> "DataRoot":
        """From an ingested data root: its metadata.json is the one read of it."""
        meta = reader.read_metadata(data_root)
        stats = None if meta.feature_mean is None else (meta.feature_mean, meta.feature_std)
        return cls(f"the data root {data_root!r}", meta.feature_dim, meta.num_classes,
                   list(meta.class_names),
                   {name: Split([reader.join(data_root, f) for f in info.files], info.rows)
                    for name, info in meta.splits.items()},
                   stats, data_root, reader.file_sizes(meta))

    @classmethod
    def from_examples(cls, patterns: Sequence[str], feature_dim: int, num_classes: int,
                      class_names: Sequence[str] = (),
                      feature_stats: Optional[FeatureStats] = None) -> "DataRoot":
        """From ``fn_args.train_files`` + ``eval_files`` (``<uri>/Split-<name>/*`` patterns);
        rows are counted on first use, shapes and statistics come from the Trainer's config."""
        import tensorflow as tf

        found: Dict[str, Split] = {}
        for pattern in patterns:
            match = _SPLIT_DIR.search(os.path.dirname(pattern))
            if not match:
                raise ValueError(f"{pattern!r} is not an ExampleGen split pattern (<uri>/Split-<name>/*)")
            files = sorted(tf.io.gfile.glob(pattern))
            if not files:
                raise ConfigError(f"split {match.group(1)!r} of the examples artifact has no "
                                  f"files ({pattern})")
            found.setdefault(match.group(1), Split([])).files.extend(files)
        uri = os.path.dirname(os.path.dirname(patterns[0])) if patterns else ""
        return cls(f"the examples artifact {uri!r}", feature_dim, num_classes, list(class_names),
                   found, feature_stats)

    def configure(self, config: ExperimentConfig) -> ExperimentConfig:
        """``config`` with data.feature_dim / num_classes of this data (a conflict raises) and the
        anchors of an rbf encoder with ``anchors='data'`` drawn from the train locations."""
        cfg = config.copy()
        cfg.data.data_root = self.path or cfg.data.data_root
        for name in ("feature_dim", "num_classes"):
            wanted, actual = getattr(cfg.data, name), getattr(self, name)
            if wanted and wanted != actual:
                raise ConfigError(f"data.{name}={wanted} in the config but {self.source} has "
                                  f"{name}={actual}; set it to 0 (auto) or to {actual}")
            setattr(cfg.data, name, int(actual))
        pos = cfg.location_encoder.position
        if pos.type == "rbf" and pos.anchors == "data" and pos.anchor_pts is None:
            # M train locations (docs/reference.md §2.8)
            from csp_tf.encoders.rbf import sample_rbf_anchor_pts
            pos.anchor_pts = sample_rbf_anchor_pts(self.labeled("train")["lon_lat"],
                                                   pos.num_rbf_anchor_pts, pos.seed).tolist()
        return cfg

    def files(self, *names: str) -> List[str]:
        out = []
        for name in names:
            if name not in self.splits:
                raise ConfigError(f"{self.source} has no split {name!r} (it has {sorted(self.splits)})")
            out += self.splits[name].files
        return out

    def rows(self, name: str) -> int:
        """Rows of split ``name`` (0 when it is absent)."""
        split = self.splits.get(name)
        if split is None:
            return 0
        if split.rows is None:
            split.rows = _count_records(split.files)
        return split.rows

    def _read(self, name: str) -> Arrays:
        """Every row of split ``name`` sorted by id (read once, then kept)."""
        if name not in self._arrays:
            files = self.files(name)
            if self.splits[name].rows == 0:  # metadata.json says so: no need to read the shards
                raise ConfigError(f"split {name!r} of {self.source} has 0 rows: {_NO_ROWS_HINT}")
            reader.check_files(files, self.sizes)
            self._arrays[name] = reader.read_arrays(files, self.feature_dim,
                                                    rerun_hint=self.path or None)
        return self._arrays[name]

    def pool(self, *names: str) -> Arrays:
        """Every row, labeled or not, of the non-empty splits ``names``, each sorted by id: the
        label-free pre-training pool, independent of how the rows are laid out in files."""
        parts = [self._read(n) for n in names if self.rows(n)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def labeled(self, name: str, label_ratio: Optional[float] = None) -> Arrays:
        """The labeled rows (``label >= 0``) of split ``name`` sorted by id, at ``label_ratio``
        (train only: ``csp_tf.data.splits.label_ratio_keep``); ConfigError when none are left."""
        arrays = self._read(name)
        keep = arrays["label"] >= 0
        if label_ratio is not None:
            if name != "train":
                raise ConfigError(f"label_ratio applies to the train split only, not {name!r}")
            keep &= label_splits.label_ratio_keep(arrays, label_ratio)
        if not keep.any():
            raise ConfigError(f"split {name!r} of {self.source} has no labeled rows"
                              + (f" at label_ratio={label_ratio}" if label_ratio else ""))
        return {k: v[keep] for k, v in arrays.items()}


def stage_inputs(config: ExperimentConfig, root: DataRoot, stage: str) -> Dict[str, Any]:
    """The keyword arguments of ``csp_tf.train.pretrain`` / ``finetune`` (``stage``) other
    than the config and the output directory: stage input(s), feature statistics and, for
    fine-tuning, the image probe's rows, the place memory's rows and the val rows when the recipe
    chooses on them."""
    seed = config.runtime.seed
    if stage == "pretrain":
        pc = config.pretrain
        # the reference's label-balanced sampler (docs/reference.md §7.1)
        if pc.sampler == "balanced":
            stage_input = from_arrays(root.labeled("train"), pc.batch_size, sampler="balanced",
                                      seed=seed, max_per_class=pc.max_num_exs_per_class)
        else:  # label-free shuffled epochs over every row of pretrain + train
            names = [s for s in PRETRAIN_SPLITS if s in root.splits]
            rows = sum(root.rows(s) for s in names)
            if rows == 0:  # else one empty "epoch" would save an untrained model as if trained
                raise ConfigError(f"pre-training needs rows, but the splits 'pretrain' and 'train' "
                                  f"of {root.source} have 0 rows: {_NO_ROWS_HINT}")
            pool_mb = rows * (root.feature_dim + 2) * 4 / 2**20
            if pool_mb <= config.data.pretrain_in_memory_mb:
                stage_input = from_arrays(root.pool(*names), pc.batch_size, sampler="shuffle",
                                          seed=seed, keys=POOL_KEYS)
            else:  # streamed: the order follows the file layout (data.pretrain_in_memory_mb)
                stage_input = from_tfrecords(root.files(*names), root.feature_dim, pc.batch_size,
                                             rows, seed=seed,
                                             deterministic=config.data.deterministic,
                                             shuffle_buffer=config.data.shuffle_buffer,
                                             sizes=root.sizes)
        return {"stage_input": stage_input, "feature_stats": root.feature_stats}
    if stage != "finetune":
        raise ValueError(f"stage must be 'pretrain' or 'finetune', not {stage!r}")
    fc = config.finetune
    labeled = root.labeled("train", fc.label_ratio)
    image_rows = labeled if fc.image_classifier_labels == "fewshot" else root.labeled("train")
    fullbatch = fc.image_classifier_solver == "fullbatch"
    memory = config.uses_place_memory()
    head_probe = fc.head_init == "probe"
    needs_val = fc.fusion == "calibrated" or fullbatch or memory or head_probe
    return {"stage_input": finetune_input(labeled, fc, seed),
            "image_input": from_arrays(image_rows, fc.batch_size, sampler="shuffle", seed=seed + 1),
            "feature_stats": root.feature_stats,
            "image_arrays": image_rows if fullbatch else None,
            "memory_arrays": labeled if memory else None,
            "head_arrays": labeled if head_probe else None,
            "validation": root.labeled("val") if needs_val and root.rows("val") else None}


def finetune_input(labeled: Arrays, fc: FinetuneConfig, seed: int) -> StageInput:
    """The fine-tuning steps' input over the labeled rows; with
    ``finetune.location_jitter_per_spacing`` each row carries its own jitter σ."""
    keys = ("lon_lat", "image_features", "label")
    if fc.location_jitter_per_spacing > 0:
        from csp_tf.location_jitter import SIGMA_KEY, row_sigmas

        labeled = dict(labeled, **{SIGMA_KEY: row_sigmas(labeled["lon_lat"],
                                                          fc.location_jitter_per_spacing)})
        keys += (SIGMA_KEY,)
    return from_arrays(labeled, fc.batch_size, sampler=fc.sampler, seed=seed,
                       max_per_class=fc.max_num_exs_per_class, keys=keys)


def _count_records(files: Sequence[str]) -> int:
    """Records in gzip TFRecord ``files`` (one pass; seconds for 10^5 rows)."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(list(files), compression_type=reader.COMPRESSION,
                                 num_parallel_reads=min(len(files), 8))
    return int(ds.batch(8192).reduce(np.int64(0), lambda n, b: n + tf.shape(b, tf.int64)[0]))
