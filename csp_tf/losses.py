"""Pre-training and fine-tuning losses as pure functions of tensors (docs/reference.md §5, §7.5).

Every function takes embeddings/probabilities already computed by the model, returns a scalar
float32 loss plus a dict of its terms, and is safe inside ``tf.function(jit_compile=True)``.
Forward passes (and their dropout masks) are the caller's job: see ``csp_tf.train.steps``.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import tensorflow as tf

BCE_EPS = 1e-5  # the reference's bce(p) = -log(p + 1e-5)
_NORM_FLOOR = 1e-12

LossOut = Tuple[tf.Tensor, Dict[str, tf.Tensor]]
# Local (B, D) tensors -> the global batch's (sum B, D) tensors + this replica's row offset.
Gather = Callable[[List[tf.Tensor]], Tuple[List[tf.Tensor], tf.Tensor]]

# ``pretrain.loss`` names (docs/reference.md §5): the contrastive ones need the image projection
# ``img_dec``.
CONTRASTIVE_LOSSES = ("contsoftmax", "contsoftmaxsym", "imgcontloss", "imgcontlossnolocneg",
                      "imgcontlosssimcse")
PRETRAIN_LOSSES = CONTRASTIVE_LOSSES + ("l2regress", "none")


def l2_normalize(u: tf.Tensor) -> tf.Tensor:
    """u / ‖u‖₂ along the last axis.

    The reference divides by the norm with no epsilon; the floor only acts when ‖u‖ < 1e-12
    (an all-zero embedding), where the reference would produce NaN.
    """
    u = tf.cast(u, tf.float32)
    norm = tf.norm(u, axis=-1, keepdims=True)
    return u / tf.maximum(norm, _NORM_FLOOR)


def _scale(sim: tf.Tensor, temperature: float, mode: str) -> tf.Tensor:
    """Reference logits are cos/τ ([QUIRK]: τ=20 flattens); ``multiply`` is the CLIP-style cos·τ."""
    if mode == "divide":
        return sim / temperature
    if mode == "multiply":
        return sim * temperature
    raise ValueError(f"temperature_mode={mode!r} must be 'divide' or 'multiply'")


def _diag_ce(logits: tf.Tensor, offset=0) -> tf.Tensor:
    """Mean over rows of -log softmax(logits)[i, offset + i] (CE with target_i = offset + i)."""
    n = tf.shape(logits)[0]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.range(n) + offset, logits=logits))


def bce(p: tf.Tensor) -> tf.Tensor:
    return -tf.math.log(p + BCE_EPS)


def contsoftmax_loss(loc_emb: tf.Tensor, img_emb: tf.Tensor, rand_loc_emb: tf.Tensor,
                     loc_emb_pos: tf.Tensor, *, temp_inbatch: float = 1.0,
                     temp_negloc: float = 1.0, temp_simcse: float = 1.0,
                     rand_sample_weight: float = 1.0, simcse_weight: float = 0.0,
                     temperature_mode: str = "divide", symmetric: bool = False,
                     gather: Optional[Gather] = None) -> LossOut:
    """CSP-MC-BLD (``contsoftmax``; ``symmetric`` = ``contsoftmaxsym``), docs/reference.md §5.1–5.2.

    Args:
      loc_emb: (B, D) E(x_i), dropout pass 1.  img_emb: (B, D) img_dec(f_i).
      rand_loc_emb: (K, B, D) E(x̃_{k,i}), pass 3; row i is compared only with image i.
      loc_emb_pos: (B, D) E(x_i), dropout pass 2 (the SimCSE positive).
      gather: cross-replica in-batch negatives (CLIP-style, ``pretrain.cross_replica_negatives``):
        local embeddings -> the global batch's + this replica's row offset; the in-batch terms
        of the local rows are then those of one replica holding the whole global batch.
    Returns: L_in + w_r·L_neg + w_s·L_sim, and the three terms.
    """
    e, v = l2_normalize(loc_emb), l2_normalize(img_emb)
    r, e_pos = l2_normalize(rand_loc_emb), l2_normalize(loc_emb_pos)
    if gather is None:
        sim = tf.matmul(e, v, transpose_b=True)  # (B, B): rows locations, columns images
        logits_in = _scale(sim, temp_inbatch, temperature_mode)
        loss_in = _diag_ce(logits_in)
        if symmetric:
            loss_in = loss_in + _diag_ce(tf.transpose(logits_in))
        loss_sim = _diag_ce(_scale(tf.matmul(e, e_pos, transpose_b=True), temp_simcse,
                                   temperature_mode))
    else:
        loss_in, loss_sim = _cross_replica_terms(
            e, v, e_pos, gather, temp_inbatch=temp_inbatch, temp_simcse=temp_simcse,
            temperature_mode=temperature_mode, symmetric=symmetric,
            with_simcse=simcse_weight != 0.0)
    pos = tf.reduce_sum(e * v, axis=-1)  # (B,)
    neg = tf.reduce_sum(r * v[None], axis=-1)  # (K, B)
    logits_neg = _scale(tf.concat([pos[None], neg], axis=0), temp_negloc, temperature_mode)
    # Target index 0 of the K+1 logits, per row: CE = logsumexp - logit_0.
    loss_neg = tf.reduce_mean(tf.reduce_logsumexp(logits_neg, axis=0) - logits_neg[0])
    total = loss_in + rand_sample_weight * loss_neg + simcse_weight * loss_sim
    return total, {"loss_inbatch": loss_in, "loss_negloc": loss_neg, "loss_simcse": loss_sim}


def _cross_replica_terms(e, v, e_pos, gather: Gather, *, temp_inbatch, temp_simcse,
                         temperature_mode, symmetric, with_simcse):
    """L_in (and L_sim when weighted in) of this replica's rows against the global batch; only
    the embeddings a term needs are gathered (one collective). With ``with_simcse`` False the
    SimCSE term (weight 0, reported only) stays per replica."""
    local = [v] + ([e] if symmetric else []) + ([e_pos] if with_simcse else [])
    gathered, offset = gather(local)
    v_all = gathered[0]
    loss_in = _diag_ce(_scale(tf.matmul(e, v_all, transpose_b=True), temp_inbatch,
                              temperature_mode), offset)
    if symmetric:  # rows: this replica's images, columns: every location of the global batch
        loss_in = loss_in + _diag_ce(_scale(tf.matmul(v, gathered[1], transpose_b=True),
                                            temp_inbatch, temperature_mode), offset)
    if with_simcse:
        loss_sim = _diag_ce(_scale(tf.matmul(e, gathered[-1], transpose_b=True), temp_simcse,
                                   temperature_mode), offset)
    else:
        loss_sim = _diag_ce(_scale(tf.matmul(e, e_pos, transpose_b=True), temp_simcse,
                                   temperature_mode))
    return loss_in, loss_sim


def _binary_inbatch(sim: tf.Tensor) -> tf.Tensor:
    """mean_i [bce(σ(s_ii)) + mean_{j≠i} bce(1 − σ(s_ij))] (docs/reference.md §5.3); needs B ≥ 2."""
    n = tf.shape(sim)[0]
    eye = tf.eye(n, dtype=sim.dtype)
    p = tf.sigmoid(sim)
    pos = bce(tf.linalg.diag_part(p))
    neg = tf.reduce_sum(bce(1.0 - p) * (1.0 - eye), axis=-1) / tf.cast(n - 1, sim.dtype)
    return tf.reduce_mean(pos + neg)


def imgcontloss_loss(loc_emb: tf.Tensor, img_emb: tf.Tensor, rand_loc_emb: tf.Tensor | None = None,
                     loc_emb_pos: tf.Tensor | None = None, *, rand_sample_weight: float = 1.0,
                     simcse_weight: float = 0.0) -> LossOut:
    """CSP-NCE: ``imgcontloss`` (rand given), ``imgcontlossnolocneg`` (rand None),
    ``imgcontlosssimcse`` (both given). Unscaled cosines, no temperatures (docs/reference.md
    §5.3)."""
    e, v = l2_normalize(loc_emb), l2_normalize(img_emb)
    loss_img = _binary_inbatch(tf.matmul(e, v, transpose_b=True))
    terms = {"loss_inbatch": loss_img}
    total = loss_img
    if rand_loc_emb is not None:
        r = l2_normalize(rand_loc_emb)
        loss_rand = tf.reduce_mean(bce(1.0 - tf.sigmoid(tf.reduce_sum(r * v[None], axis=-1))))
        terms["loss_negloc"] = loss_rand
        total = total + rand_sample_weight * loss_rand
    if loc_emb_pos is not None:
        loss_ss = _binary_inbatch(tf.matmul(e, l2_normalize(loc_emb_pos), transpose_b=True))
        terms["loss_simcse"] = loss_ss
        total = total + simcse_weight * loss_ss
    return total, terms


def l2regress_loss(decoded_features: tf.Tensor, image_features: tf.Tensor) -> LossOut:
    """The paper's MSE baseline: mean over B·F of (loc_dec(E(x)) − f)² (docs/reference.md §5.4)."""
    loss = tf.reduce_mean(tf.square(tf.cast(decoded_features, tf.float32) - image_features))
    return loss, {"loss_mse": loss}


def full_loss(probs: tf.Tensor, labels: tf.Tensor, rand_probs: tf.Tensor, *,
              rand_sample_weight: float = 1.0) -> LossOut:
    """Fine-tuning "full loss" of Mac Aodha et al. 2019 as the reference computes it
    (docs/reference.md §7.5).

    probs, rand_probs: (B, C) per-class sigmoids at the real and the random locations.
    L = mean_{i,c} ℓ_pos + w_r · mean_{i,c} −log(1 − p̃ + 1e-5), with
    ℓ_pos[i,c] = −log(1 − p[i,c] + 1e-5) for c ≠ y_i and C·(−log(p[i,y_i] + 1e-5)) at y_i.
    """
    probs = tf.cast(probs, tf.float32)
    rand_probs = tf.cast(rand_probs, tf.float32)
    num_classes = tf.shape(probs)[-1]
    onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
    pos_weight = tf.cast(num_classes, tf.float32)
    loss_pos = tf.reduce_mean(onehot * pos_weight * bce(probs) + (1.0 - onehot) * bce(1.0 - probs))
    loss_bg = tf.reduce_mean(bce(1.0 - rand_probs))
    total = loss_pos + rand_sample_weight * loss_bg
    return total, {"loss_pos": loss_pos, "loss_bg": loss_bg}


def softmax_location_loss(logits: tf.Tensor, labels: tf.Tensor) -> LossOut:
    """Softmax cross-entropy of the location classifier (natural-data fine-tuning): with shuffled
    epochs its optimum is the posterior P(y|x), class prior included."""
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)))
    return loss, {"loss_location": loss}


def image_classifier_loss(logits: tf.Tensor, labels: tf.Tensor) -> LossOut:
    """Softmax cross-entropy of the linear image classifier (Img-only baseline)."""
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)))
    return loss, {"loss_image": loss}
