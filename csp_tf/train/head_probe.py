"""Linear probing before fine-tuning (``finetune.head_init='probe'``).

Fine-tuning a pre-trained location encoder under a randomly initialised class head sends the
head's large, random early gradients back into the encoder and rewrites the pre-trained
features before the head has learnt to read them (Kumar et al., ICLR 2022, "Fine-tuning can
distort pretrained features"). Fitting the head first on the frozen embeddings (a convex
problem, solved to convergence like the image probe) and only then fine-tuning everything keeps
what pre-training learnt: fine-tuning starts at the linear probe's solution.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from csp_tf.configs import parse_float_list

EMBED_BATCH = 8192


def frozen_embeddings(model, lon_lat: np.ndarray) -> np.ndarray:
    """The location encoder's embeddings in inference mode (no dropout), in batches."""
    lon_lat = np.asarray(lon_lat, np.float32)
    parts = [model.location_embedding(tf.constant(lon_lat[i:i + EMBED_BATCH]), training=False)
             for i in range(0, len(lon_lat), EMBED_BATCH)]
    return tf.cast(tf.concat(parts, 0), tf.float32).numpy()


def fit_head_on_frozen_encoder(model, fc, head_arrays: Mapping[str, np.ndarray],
                               validation: Optional[Mapping[str, np.ndarray]],
                               seed: int) -> Dict[str, object]:
    """Fits ``model.class_head`` on the frozen embeddings of ``head_arrays`` (the labeled rows),
    the L2 weight chosen on ``validation``; the encoder is untouched. The solver and its settings
    (steps, rate, rounds) are the image probe's. Returns the history entry."""
    from csp_tf.train.linear_probe import fit_dense_probe

    if model.location_head != "softmax":
        raise ValueError("head_init='probe' fits a softmax class head, but the model's "
                         f"location_head is {model.location_head!r}")
    x = frozen_embeddings(model, head_arrays["lon_lat"])
    has_val = validation is not None and len(validation["label"]) > 0
    fit = fit_dense_probe(
        model.class_head, x, np.asarray(head_arrays["label"]),
        l2_grid=parse_float_list("finetune.head_probe_l2_grid", fc.head_probe_l2_grid),
        steps=fc.image_classifier_steps, lr=fc.image_classifier_fullbatch_lr,
        max_rounds=fc.image_classifier_max_rounds, seed=seed,
        val_x=frozen_embeddings(model, validation["lon_lat"]) if has_val else None,
        val_labels=np.asarray(validation["label"]) if has_val else None, what="head probe")
    return {"stage": "head_probe", "l2": fit.l2, "val_top1": fit.val_top1, "rows": int(len(x)),
            "grid": fit.grid}


def probe_head_if_asked(model, fc, head_arrays: Optional[Mapping[str, np.ndarray]],
                        validation: Optional[Mapping[str, np.ndarray]], seed: int
                        ) -> List[Dict[str, object]]:
    """The fine-tuning stage's start: with ``finetune.head_init='probe'`` the class head is
    fitted on the frozen encoder (one history entry), else nothing happens (no entries)."""
    if fc.head_init != "probe":
        return []
    if head_arrays is None:
        raise ValueError("finetune.head_init='probe' needs head_arrays (the labeled rows; "
                         "csp_tf.train.stage_inputs builds them)")
    return [fit_head_on_frozen_encoder(model, fc, head_arrays, validation, seed)]
