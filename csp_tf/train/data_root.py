"""Stage inputs read from an ingested data root (docs/architecture.md): pre-training streams
``pretrain`` + ``train`` without labels; fine-tuning loads the label-ratio subset of ``train``."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.train.inputs import StageInput, from_arrays, from_tfrecords


def resolve_data_shapes(config: ExperimentConfig, data_root: str) -> ExperimentConfig:
    """Fills data.feature_dim / num_classes from metadata.json (a conflicting value raises) and
    the anchors of an rbf encoder with ``anchors='data'`` from the train split."""
    from csp_tf.data.reader import read_metadata

    meta = read_metadata(data_root)
    cfg = config.copy()
    cfg.data.data_root = data_root
    for name, actual in (("feature_dim", meta.feature_dim), ("num_classes", meta.num_classes)):
        wanted = getattr(cfg.data, name)
        if wanted and wanted != actual:
            raise ConfigError(f"data.{name}={wanted} in the config but the data root {data_root!r} "
                              f"has {name}={actual}; set it to 0 (auto) or to {actual}")
        setattr(cfg.data, name, int(actual))
    pos = cfg.location_encoder.position
    if pos.type == "rbf" and pos.anchors == "data" and pos.anchor_pts is None:
        from csp_tf.encoders.rbf import sample_rbf_anchor_pts  # M train locations (SPEC §2.8)
        pos.anchor_pts = sample_rbf_anchor_pts(load_arrays(data_root, "train")["lon_lat"],
                                               pos.num_rbf_anchor_pts, pos.seed).tolist()
    return cfg


def pretrain_input(config: ExperimentConfig, data_root: str) -> StageInput:
    """Label-free shuffled epochs over pretrain + train (default), or the reference's balanced
    sampler over labeled train rows (``pretrain.sampler='balanced'``, parity runs)."""
    from csp_tf.data.reader import read_metadata, split_files

    pc, seed = config.pretrain, config.runtime.seed
    if pc.sampler == "balanced":
        arrays = load_arrays(data_root, "train")
        return from_arrays(arrays, pc.batch_size, sampler="balanced", seed=seed,
                           max_per_class=pc.max_num_exs_per_class)
    meta = read_metadata(data_root)
    files = split_files(data_root, "pretrain") + split_files(data_root, "train")
    rows = sum(meta.splits[s].rows for s in ("pretrain", "train") if s in meta.splits)
    if rows == 0:  # else one empty "epoch" would save an untrained model as if trained
        raise ConfigError(f"pre-training needs rows, but the splits 'pretrain' and 'train' of the "
                          f"data root {data_root!r} have 0 rows: check its summary.json (rejected "
                          f"rows, the manifest's split column) and re-run the ingest")
    return from_tfrecords(files, meta.feature_dim, pc.batch_size, rows, seed=seed,
                          deterministic=config.data.deterministic,
                          shuffle_buffer=config.data.shuffle_buffer)


def finetune_inputs(config: ExperimentConfig, data_root: str) -> Tuple[StageInput, StageInput]:
    """(location fine-tuning input, image-classifier input) for ``finetune.label_ratio``."""
    fc, seed = config.finetune, config.runtime.seed
    labeled = load_arrays(data_root, "train", fc.label_ratio)
    loc = from_arrays(labeled, fc.batch_size, sampler=fc.sampler, seed=seed,
                      max_per_class=fc.max_num_exs_per_class)
    image_rows = labeled if fc.image_classifier_labels == "fewshot" else load_arrays(data_root, "train")
    img = from_arrays(image_rows, fc.batch_size, sampler="shuffle", seed=seed + 1)
    return loc, img


def load_arrays(data_root: str, split: str, label_ratio: float | None = None) -> Dict[str, np.ndarray]:
    """A split's arrays (``reader.load_split_arrays``); ConfigError naming the split and the
    root when it holds no rows (at ``label_ratio``), before anything trains on it."""
    from csp_tf.data.reader import load_split_arrays, read_metadata

    info = read_metadata(data_root).splits.get(split)
    if info is not None and info.rows == 0:  # metadata says so: no need to read the shards
        raise ConfigError(f"split {split!r} of the data root {data_root!r} has 0 rows: check its "
                          f"summary.json (rejected rows, the manifest's split column) and re-run "
                          f"the ingest")
    arrays = load_split_arrays(data_root, split, label_ratio=label_ratio)
    if len(arrays["lon_lat"]) == 0:
        raise ConfigError(f"split {split!r} of the data root {data_root!r} has no rows"
                          + (f" at label_ratio={label_ratio}" if label_ratio else ""))
    return arrays
