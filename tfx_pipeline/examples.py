"""Trainer-side reading of the ExampleGen ``examples`` artifact.

The Trainers read only what ImportExampleGen wrote (``<uri>/Split-<name>/*.gz``, gzip
TFRecords of the csp-tf schema), so MLMD lineage is the whole truth about a model's data. Rows
per split are counted here; shapes and class names arrive in ``custom_config``. The stage
inputs mirror ``csp_tf.train.data_root`` (which reads a data root by its metadata.json) for a
plain list of files, which also works on ``gs://`` artifact URIs.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.data import reader
from csp_tf.train.inputs import StageInput, from_arrays, from_tfrecords

_SPLIT_DIR = re.compile(r"Split-([^/\\]+)$")


def files_by_split(patterns: Sequence[str]) -> Dict[str, List[str]]:
    """``fn_args.train_files`` / ``eval_files`` patterns → {split name: sorted file paths}."""
    out: Dict[str, List[str]] = {}
    for pattern in patterns:
        split_dir = os.path.dirname(pattern)
        match = _SPLIT_DIR.search(split_dir)
        if not match:
            raise ValueError(f"{pattern!r} is not an ExampleGen split pattern (<uri>/Split-<name>/*)")
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise ConfigError(f"split {match.group(1)!r} of the examples artifact has no files "
                              f"({pattern})")
        out.setdefault(match.group(1), []).extend(files)
    return out


def count_rows(files: Sequence[str]) -> int:
    """Number of records in gzip TFRecord ``files`` (one pass; seconds for 10^5 rows)."""
    ds = tf.data.TFRecordDataset(list(files), compression_type=reader.COMPRESSION,
                                 num_parallel_reads=min(len(files), 8))
    return int(ds.batch(8192).reduce(np.int64(0), lambda n, b: n + tf.shape(b, tf.int64)[0]))


def load_arrays(files: Sequence[str], feature_dim: int,
                label_ratio: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Arrays of ``files`` sorted by id (independent of sharding), like ``reader.load_split_arrays``
    (``id`` and ``region`` as bytes, as tf.data gives them).

    ``label_ratio`` keeps the label-ratio subset (train split only): ``make_dataset`` filters
    with the one rule, ``csp_tf.data.splits.label_ratio_keep`` (manifest subset, else rank).
    """
    ds = reader.make_dataset(list(files), feature_dim, batch_size=4096, shuffle=False,
                             deterministic=True, label_ratio=label_ratio)
    parts: Dict[str, List[np.ndarray]] = {}
    for batch in ds:
        for key, value in batch.items():
            parts.setdefault(key, []).append(value.numpy())
    if not parts:
        raise ConfigError(f"no rows in {len(files)} file(s) of the examples artifact "
                          f"({os.path.dirname(files[0]) if files else 'no files'}"
                          + (f", at label_ratio={label_ratio}" if label_ratio else "") + ")")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.argsort(arrays["id"], kind="stable")
    return {k: v[order] for k, v in arrays.items()}


def pretrain_input(config: ExperimentConfig, splits: Dict[str, List[str]]) -> StageInput:
    """Label-free shuffled epochs over every train split given (pretrain + train), or the
    reference's balanced sampler over the labeled ``train`` rows (``pretrain.sampler``)."""
    pc, seed = config.pretrain, config.runtime.seed
    if pc.sampler == "balanced":
        arrays = load_arrays(_split(splits, "train"), config.data.feature_dim)
        labeled = {k: v[arrays["label"] >= 0] for k, v in arrays.items()}
        return from_arrays(labeled, pc.batch_size, sampler="balanced", seed=seed,
                           max_per_class=pc.max_num_exs_per_class)
    files = [f for name in sorted(splits) for f in splits[name]]
    rows = count_rows(files)
    if rows == 0:  # else one empty "epoch" would save an untrained model as if trained
        raise ConfigError(f"pre-training needs rows, but the splits {sorted(splits)} of the "
                          f"examples artifact ({os.path.dirname(files[0])}) have 0 rows")
    return from_tfrecords(files, config.data.feature_dim, pc.batch_size, rows,
                          seed=seed, deterministic=config.data.deterministic,
                          shuffle_buffer=config.data.shuffle_buffer)


def finetune_inputs(config: ExperimentConfig,
                    splits: Dict[str, List[str]]) -> Tuple[StageInput, StageInput]:
    """(location fine-tuning input, image-classifier input) on the ``train`` split."""
    fc, seed, dim = config.finetune, config.runtime.seed, config.data.feature_dim
    train = _split(splits, "train")
    labeled = load_arrays(train, dim, fc.label_ratio)
    loc = from_arrays(labeled, fc.batch_size, sampler=fc.sampler, seed=seed,
                      max_per_class=fc.max_num_exs_per_class)
    img = from_arrays(image_classifier_rows(config, splits, labeled), fc.batch_size,
                      sampler="shuffle", seed=seed + 1)
    return loc, img


def image_classifier_rows(config: ExperimentConfig, splits: Dict[str, List[str]],
                          labeled: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
    """The image probe's labeled train rows: the label-ratio subset (``fewshot``) or all."""
    fc, dim = config.finetune, config.data.feature_dim
    train = _split(splits, "train")
    if fc.image_classifier_labels == "fewshot":
        return labeled if labeled is not None else load_arrays(train, dim, fc.label_ratio)
    full = load_arrays(train, dim)
    return {k: v[full["label"] >= 0] for k, v in full.items()}


def _split(splits: Dict[str, List[str]], name: str) -> List[str]:
    if name not in splits:
        raise ConfigError(f"the Trainer needs the {name!r} split; it got {sorted(splits)}")
    return splits[name]
