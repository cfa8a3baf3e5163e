"""What a stage needs from a data root beyond its training batches: the ingest's feature
statistics, the image probe's labeled rows, and the ``val`` split every data-driven choice
(probe L2, fusion weights) is made on. Used by the CLI and the TFX Trainers."""

from __future__ import annotations

from typing import Any, Dict, Optional

from csp_tf.configs import ExperimentConfig


def feature_stats(data_root: str):
    """(mean, std) of image_features from metadata.json; None for roots written without them."""
    from csp_tf.data.reader import read_metadata

    meta = read_metadata(data_root)
    return None if meta.feature_mean is None else (meta.feature_mean, meta.feature_std)


def finetune_extras(config: ExperimentConfig, data_root: str) -> Dict[str, Optional[Any]]:
    """Keyword arguments for ``csp_tf.train.finetune``: feature_stats, image_arrays, validation
    (the last two only when the recipe uses them: full-batch probe / calibrated fusion)."""
    from csp_tf.data.reader import read_metadata
    from csp_tf.train.data_root import load_arrays

    fc = config.finetune
    extras: Dict[str, Optional[Any]] = {"feature_stats": feature_stats(data_root),
                                        "image_arrays": None, "validation": None}
    if fc.image_classifier_solver == "fullbatch":
        ratio = fc.label_ratio if fc.image_classifier_labels == "fewshot" else None
        extras["image_arrays"] = load_arrays(data_root, "train", ratio)
    info = read_metadata(data_root).splits.get("val")
    needs_val = fc.fusion == "calibrated" or fc.image_classifier_solver == "fullbatch"
    if needs_val and info is not None and info.rows > 0:
        extras["validation"] = load_arrays(data_root, "val")
    return extras
