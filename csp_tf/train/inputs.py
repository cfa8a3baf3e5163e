"""Stage inputs: a per-epoch ``tf.data`` factory plus its length, from arrays or TFRecords.

Every epoch's order is a function of (seed, epoch), so a run resumed mid-epoch can skip the
batches it already consumed and continue on exactly the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from csp_tf.coords import check_lon_lat_array

Arrays = Dict[str, np.ndarray]
FeatureStats = Tuple[np.ndarray, np.ndarray]  # per-dimension (mean, std) of image_features


@dataclass
class StageInput:
    """``dataset_fn(epoch)`` yields dict batches (lon_lat, image_features, label)."""

    dataset_fn: Callable[[int], tf.data.Dataset]
    steps_per_epoch: int
    num_examples: int
    # Turns a tf.errors.DataLossError met while iterating into an error naming the bad file.
    explain_data_loss: Optional[Callable[[Exception], Exception]] = None

    def check_feature_dim(self, feature_dim: int, stage: str) -> None:
        """A clear error, before any step, when the data's feature width is not the model's."""
        spec = self.dataset_fn(0).element_spec.get("image_features")
        width = spec.shape[-1] if spec is not None else None
        if width is not None and width != feature_dim:
            raise ValueError(f"{stage}: the data's image_features have width {width} but "
                             f"data.feature_dim={feature_dim}")


def balanced_indices(labels: np.ndarray, max_per_class: int, rng: np.random.Generator) -> np.ndarray:
    """The reference BalancedSampler epoch (docs/reference.md §7.1): ≤ max_per_class rows per
    class, drawn without replacement, then shuffled together."""
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        take = min(len(idx), max_per_class)
        chosen.append(rng.choice(idx, size=take, replace=False))
    out = np.concatenate(chosen) if chosen else np.zeros([0], np.int64)
    rng.shuffle(out)
    return out


def from_arrays(arrays: Arrays, batch_size: int, *, sampler: str = "shuffle", seed: int = 0,
                max_per_class: int = 100, keys: Sequence[str] = ("lon_lat", "image_features", "label"),
                drop_remainder: bool = False) -> StageInput:
    """In-memory stage input. ``sampler``: ``shuffle`` (all rows) or ``balanced``
    (docs/reference.md §7.1)."""
    n = len(arrays["lon_lat"])
    if n == 0:
        raise ValueError("stage input is empty: no rows to train on")
    data = {k: np.asarray(arrays[k]) for k in keys if k in arrays}
    check_lon_lat_array(data["lon_lat"], source="stage input lon_lat")
    if "image_features" in data and not np.all(np.isfinite(data["image_features"])):
        row = int(np.flatnonzero(~np.isfinite(data["image_features"]).all(axis=1))[0])
        raise ValueError(f"stage input image_features: row {row} has a non-finite value")
    if sampler == "balanced":
        if "label" not in data or np.any(data["label"] < 0):
            raise ValueError("sampler='balanced' needs a label for every row; use 'shuffle' for "
                             "label-free pre-training")
        epoch_len = int(sum(min(c, max_per_class) for c in np.bincount(data["label"])))
    else:
        epoch_len = n

    tensors: Dict[str, tf.Tensor] = {}

    def dataset_fn(epoch: int) -> tf.data.Dataset:
        rng = np.random.default_rng([seed, epoch])
        idx = (balanced_indices(data["label"], max_per_class, rng) if sampler == "balanced"
               else rng.permutation(n))
        batches = tf.data.Dataset.from_tensor_slices(idx).batch(batch_size, drop_remainder=drop_remainder)
        # The arrays become tensors once, on the first epoch (not at construction: a
        # MultiWorkerMirroredStrategy must be created before any TF op runs).
        if not tensors:
            tensors.update({k: tf.constant(v) for k, v in data.items()})
        return batches.map(lambda i: {k: tf.gather(v, i) for k, v in tensors.items()},
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)

    steps = epoch_len // batch_size if drop_remainder else -(-epoch_len // batch_size)
    return StageInput(dataset_fn, steps, epoch_len)


def from_tfrecords(files: Sequence[str], feature_dim: int, batch_size: int, num_examples: int, *,
                   seed: int = 0, deterministic: bool = True, shuffle_buffer: int = 10000,
                   drop_remainder: bool = False,
                   sizes: Optional[Mapping[str, int]] = None) -> StageInput:
    """Streaming stage input over TFRecords (pre-training pools that do not fit in memory).
    ``sizes``: the files' expected sizes (``reader.check_files``), checked every epoch."""
    from csp_tf.data.reader import explain_data_loss, make_dataset

    files = list(files)
    if not files:
        raise ValueError("no TFRecord files given for this stage")

    def dataset_fn(epoch: int) -> tf.data.Dataset:
        return make_dataset(files, feature_dim, batch_size, shuffle=True, seed=seed * 100003 + epoch,
                            deterministic=deterministic, shuffle_buffer=shuffle_buffer,
                            drop_remainder=drop_remainder, sizes=sizes)

    steps = num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)
    return StageInput(dataset_fn, max(steps, 1), num_examples,
                      explain_data_loss=lambda e: explain_data_loss(e, files))
