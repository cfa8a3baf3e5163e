"""Per-batch loss functions of the two stages and the generic distributed train step.

A step is a pure function of (weights, batch, step number): dropout masks and random negative
locations come from stateless seeds derived from (run seed, stage, step, replica), so runs are
reproducible, resume to the exact same trajectory and compile with XLA (``jit_compile``).
The forward passes and gradients are XLA-compiled. Under the default (one-device) strategy the
optimizer update is compiled into the same cluster (Adam's per-variable element-wise updates
fused, no TF op per term); under any other strategy, or loss-scaled (mixed_float16), it runs
outside, where ``tf.distribute`` needs it (all-reduce, per-replica variables).
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, List, Sequence, Tuple

import keras
import tensorflow as tf
from tensorflow.python.distribute import distribute_lib

from csp_tf import losses
from csp_tf.configs import FinetuneConfig, PretrainConfig
from csp_tf.models import CSPModel
from csp_tf.models.layers import SegmentSeeds, fold_seed
from csp_tf.location_jitter import SIGMA_KEY, jitter_locations
from csp_tf.negatives import sample_random_locations

log = logging.getLogger("csp_tf")
Batch = Dict[str, tf.Tensor]
LossFn = Callable[[Batch, tf.Tensor], Tuple[tf.Tensor, Dict[str, tf.Tensor]]]

# Salts that make the passes of one step independent (docs/reference.md §5: "every forward pass of
# the location encoder draws a fresh dropout mask").
_PASS_REAL, _PASS_RAND_SAMPLE, _PASS_RAND, _PASS_POS, _PASS_JITTER = 1, 2, 3, 4, 5


def pretrain_variables(model: CSPModel) -> List[tf.Variable]:
    """What pre-training updates: the location encoder and img_dec / loc_dec (docs/reference.md
    §7.2)."""
    heads = [h for h in (model.img_dec, model.loc_dec) if h is not None]
    return list(model.location_encoder.trainable_variables) + [
        v for h in heads for v in h.trainable_variables]


def finetune_variables(model: CSPModel, freeze_encoder: bool = False) -> List[tf.Variable]:
    """What fine-tuning updates: the whole location encoder and the class head (docs/reference.md
    §7.5); with ``freeze_encoder`` the class head only (``finetune.freeze_encoder``)."""
    head = list(model.class_head.trainable_variables)
    return head if freeze_encoder else list(model.location_encoder.trainable_variables) + head


def merged_location_passes(model: CSPModel, x: tf.Tensor, xr, use_pos: bool, seed: tf.Tensor,
                           k: int = 1):
    """The step's location-encoder passes (real, K·B random, SimCSE positive) as ONE network call
    on the concatenated rows, with per-segment dropout seeds (``SegmentSeeds``): every pass gets
    exactly the mask of a separate call with its own seed, so the math is that of three calls,
    with matmuls three times as tall. The real points' position features are computed once and
    reused for the positive pass (the position encoder has no randomness).

    Returns (e, r, e_pos): r is (K, B, D) or None, e_pos None without the positive pass.
    """
    le = model.location_encoder
    b = tf.shape(x)[0]
    px = le.position_encoder(tf.cast(x, tf.float32))
    feats, seeds, rows = [px], [fold_seed(seed, _PASS_REAL)], [b]
    if xr is not None:
        feats.append(le.position_encoder(tf.cast(xr, tf.float32)))
        seeds.append(fold_seed(seed, _PASS_RAND))
        rows.append(k * b)
    if use_pos:
        feats.append(px)
        seeds.append(fold_seed(seed, _PASS_POS))
        rows.append(b)
    if len(feats) == 1:
        return le.network(px, training=True, seed=seeds[0]), None, None
    out = le.network(tf.concat(feats, axis=0), training=True, seed=SegmentSeeds(seeds, rows))
    parts = tf.split(out, tf.stack(rows), num=len(rows), axis=0)
    e, rest = parts[0], parts[1:]
    r = e_pos = None
    if xr is not None:
        r, rest = rest[0], rest[1:]
        r = tf.reshape(r, tf.stack([k, b, tf.shape(r)[-1]]))
    if use_pos:
        e_pos = rest[0]
    return e, r, e_pos


def cross_replica_gather(tensors: List[tf.Tensor]):
    """All-gathers (B_r, D) tensors over the replicas of the current ``tf.distribute`` replica
    context (one collective; its gradient all-reduces and slices back, so every replica's
    weights get the gradient of the global-batch loss). Returns the gathered tensors and this
    replica's first row in them. One replica: the tensors themselves, offset 0."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return list(tensors), tf.constant(0, tf.int32)
    sizes = ctx.all_gather(tf.shape(tensors[0])[:1], axis=0)
    before = tf.range(ctx.num_replicas_in_sync) < tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    offset = tf.reduce_sum(tf.where(before, sizes, 0))
    return list(ctx.all_gather(list(tensors), axis=0)), offset


def make_pretrain_loss(model: CSPModel, cfg: PretrainConfig, merge_passes: bool = True) -> LossFn:
    """Returns loss(batch, seed) for ``cfg.loss`` (docs/reference.md §5); ``seed`` is a [2] int
    tensor.

    ``cfg.cross_replica_negatives``: in-batch negatives over the global batch of a
    ``tf.distribute`` run (``cross_replica_gather``); identical to off with one replica.
    ``merge_passes`` (default): one location-encoder call for all passes of the step
    (``merged_location_passes``; same masks, same negatives, same terms). False keeps one call
    per pass (the original formulation, kept for the equivalence tests).
    """
    loss_name = cfg.loss
    if loss_name == "none":
        raise ValueError("pretrain.loss='none' has no pre-training stage; skip pretrain()")
    k = int(cfg.num_neg_rand_loc)
    use_rand = loss_name != "imgcontlossnolocneg"
    # The SimCSE pass only matters when its term is weighted in (masks are independent per pass,
    # so skipping it when the weight is 0 changes nothing else).
    use_pos = (loss_name in ("contsoftmax", "contsoftmaxsym") and cfg.simcse_weight != 0.0) or (
        loss_name == "imgcontlosssimcse")

    def loss_fn(batch: Batch, seed: tf.Tensor):
        x, f = batch["lon_lat"], batch["image_features"]
        if loss_name == "l2regress":
            e = model.location_embedding(x, training=True, seed=fold_seed(seed, _PASS_REAL))
            return losses.l2regress_loss(model.loc_dec(e), model.prepare_features(f))
        v = model.image_embedding(f)
        b = tf.shape(x)[0]
        # One call samples K·B locations; row r belongs to (k, i) = (r // B, r % B).
        xr = (sample_random_locations(k * b, cfg.neg_rand_type, fold_seed(seed, _PASS_RAND_SAMPLE))
              if use_rand else None)
        if merge_passes:
            e, r, e_pos = merged_location_passes(model, x, xr, use_pos, seed, k)
        else:
            e = model.location_embedding(x, training=True, seed=fold_seed(seed, _PASS_REAL))
            r = e_pos = None
            if use_rand:
                r = model.location_embedding(xr, training=True, seed=fold_seed(seed, _PASS_RAND))
                r = tf.reshape(r, tf.stack([k, b, tf.shape(r)[-1]]))
            if use_pos:
                e_pos = model.location_embedding(x, training=True, seed=fold_seed(seed, _PASS_POS))
        if loss_name in ("contsoftmax", "contsoftmaxsym"):
            return losses.contsoftmax_loss(
                e, v, r, e if e_pos is None else e_pos, temp_inbatch=cfg.temp_inbatch,
                temp_negloc=cfg.temp_negloc, temp_simcse=cfg.temp_simcse,
                rand_sample_weight=cfg.rand_sample_weight,
                simcse_weight=cfg.simcse_weight if use_pos else 0.0,
                temperature_mode=cfg.temperature_mode, symmetric=loss_name == "contsoftmaxsym",
                gather=cross_replica_gather if cfg.cross_replica_negatives else None)
        return losses.imgcontloss_loss(e, v, r, e_pos, rand_sample_weight=cfg.rand_sample_weight,
                                       simcse_weight=cfg.simcse_weight)

    loss_fn.collective = bool(cfg.cross_replica_negatives)  # see TrainStep
    return loss_fn


def make_finetune_loss(model: CSPModel, cfg: FinetuneConfig) -> LossFn:
    """``presence``: the "full loss" with one forward pass on [x; x̃] (docs/reference.md §7.5);
    ``softmax``: cross-entropy of softmax(W e(x) + b), no random background locations.
    ``cfg.location_jitter`` > 0, or a per-row σ column in the batch
    (``cfg.location_jitter_per_spacing``), moves the labeled locations by fresh Gaussian noise
    each step."""
    def labeled_locations(batch: Batch, seed: tf.Tensor) -> tf.Tensor:
        sigma = cfg.location_jitter
        if SIGMA_KEY in batch:
            sigma = batch[SIGMA_KEY] + sigma
        elif cfg.location_jitter_per_spacing > 0:  # checked when the step is traced
            raise ValueError("finetune.location_jitter_per_spacing needs each batch to carry the "
                             f"rows' σ as {SIGMA_KEY!r}: build the fine-tuning input with "
                             "csp_tf.train.data_root.finetune_input")
        return jitter_locations(batch["lon_lat"], sigma, fold_seed(seed, _PASS_JITTER))

    if cfg.location_loss == "softmax":
        def softmax_loss_fn(batch: Batch, seed: tf.Tensor):
            logits = model.location_logits(labeled_locations(batch, seed), training=True,
                                           seed=fold_seed(seed, _PASS_REAL))
            return losses.softmax_location_loss(logits, batch["label"])

        return softmax_loss_fn

    def loss_fn(batch: Batch, seed: tf.Tensor):
        x, y = labeled_locations(batch, seed), batch["label"]
        b = tf.shape(x)[0]
        xr = sample_random_locations(b, cfg.neg_rand_type, fold_seed(seed, _PASS_RAND_SAMPLE))
        probs = model.location_probs(tf.concat([x, xr], axis=0),
                                     training=True, seed=fold_seed(seed, _PASS_REAL))
        return losses.full_loss(probs[:b], y, probs[b:], rand_sample_weight=cfg.rand_sample_weight)

    return loss_fn


def make_image_classifier_loss(model: CSPModel) -> LossFn:
    def loss_fn(batch: Batch, seed: tf.Tensor):
        return losses.image_classifier_loss(model.image_logits(batch["image_features"]), batch["label"])

    return loss_fn


class TrainStep:
    """Optimisation steps under a ``tf.distribute`` strategy.

    ``run(dist_batches, step)`` runs one step per batch, all inside ONE ``tf.function`` call (no
    host round trip between them), and returns each replica-averaged loss term stacked over the
    steps ([n]). Step i of the call uses step number ``step + i``, so its dropout masks and
    negatives are those of a one-step-per-call run. Each replica folds its replica id into the
    seed, so replicas draw different dropout masks and negatives.
    Loss scaling for mixed precision is handled by ``keras.optimizers.LossScaleOptimizer``.
    """

    def __init__(self, loss_fn: LossFn, optimizer: keras.optimizers.Optimizer,
                 variables: Sequence[tf.Variable], strategy: tf.distribute.Strategy,
                 seed: int, stage_salt: int, jit_compile: bool):
        self.loss_fn, self.optimizer, self.strategy = loss_fn, optimizer, strategy
        self.variables = list(variables)
        self.seed, self.stage_salt = int(seed), int(stage_salt)
        # One exact trace per batch shape (no reduce_retracing): the full batches and an epoch's
        # short last batch each run on their own graph, whichever came first. Relaxed traces
        # made that order matter: a run resumed right before the short batch traced [b] first
        # and then ran every full batch on a relaxed [None] graph, which Grappler optimises
        # differently from [B], so it drifted ~1e-4 from an uninterrupted run in one epoch
        # (tests/tfx_pipeline/test_trainer_resume.py, in_memory). The cost: one more trace
        # per stage.
        # _noinline: the forward/backward graph is optimised (Grappler) on its own, as one unit,
        # so a call of N steps runs the same kernels as N calls (bit-for-bit the same weights);
        # inlined, Grappler's rewrites across the unrolled steps change float rounding.
        # The update joins the compiled cluster only under the default strategy: elsewhere
        # tf.distribute must all-reduce the gradients and update mirrored variables itself.
        # A loss-scaled optimizer (mixed_float16) keeps its skip-on-overflow branch outside.
        self.update_in_cluster = bool(jit_compile) and (
            strategy is distribute_lib._get_default_strategy()) and not isinstance(  # noqa: SLF001
            optimizer, keras.optimizers.LossScaleOptimizer)
        self.grads_fn = tf.function(
            self._loss_grads_and_update if self.update_in_cluster else self._loss_and_grads,
            jit_compile=jit_compile, experimental_attributes={"_noinline": True})
        if getattr(loss_fn, "collective", False) and strategy.num_replicas_in_sync > 1:
            # A loss with a collective (the all-gather of cross-replica negatives) calls
            # merge_call, which tf.distribute forbids inside a nested tf.function: it is traced
            # into the step's graph directly, without XLA.
            if jit_compile:
                log.warning("runtime.jit_compile is not applied to a loss with cross-replica "
                            "collectives (pretrain.cross_replica_negatives)")
            self.grads_fn = self._loss_and_grads
            self.update_in_cluster = False
        self.steps_fn = tf.function(self._distributed_steps)

    def _loss_and_grads(self, batch, seed):
        with tf.GradientTape() as tape:
            loss, terms = self.loss_fn(batch, seed)
            scaled = loss / tf.cast(self.strategy.num_replicas_in_sync, loss.dtype)
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, self.variables)
        return dict(terms, loss=loss), grads

    def _loss_grads_and_update(self, batch, seed):
        terms, grads = self._loss_and_grads(batch, seed)
        self.optimizer.apply(grads, self.variables)
        return terms, None

    def _replica_step(self, batch, step, after=None):
        if after is not None:  # start only once the previous step's update has run
            with tf.control_dependencies([after]):
                batch = tf.nest.map_structure(tf.identity, batch)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.cast(self.seed * 1000 + self.stage_salt, tf.int64),
                         tf.cast(step, tf.int64)])
        seed = fold_seed(seed, replica)
        terms, grads = self.grads_fn(batch, seed)
        if not self.update_in_cluster:
            self.optimizer.apply(grads, self.variables)
        return terms

    def _distributed_steps(self, dist_batches, step):
        # Unrolled over the batches: automatic control dependencies order step i's variable
        # updates before step i+1's reads, exactly as separate calls would.
        # Each step starts after the previous one's update (gated on the optimizer's step
        # counter): otherwise the executor overlaps step i+1's input-side work with step i's
        # GEMMs, which on a CPU only makes them compete for the same cores.
        per_step, after = [], None
        for i, dist_batch in enumerate(dist_batches):
            terms = self.strategy.run(self._replica_step, args=(dist_batch, step + i, after))
            after = tf.identity(self.optimizer.iterations)
            per_step.append({k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                             for k, v in terms.items()})
        return {k: tf.stack([t[k] for t in per_step]) for k in per_step[0]}

    def run(self, dist_batches: Sequence, step: int) -> Dict[str, tf.Tensor]:
        """Steps ``step, step + 1, …`` on ``dist_batches``; each term stacked over the steps."""
        return self.steps_fn(tuple(dist_batches), tf.constant(step, tf.int64))

    def __call__(self, dist_batch, step) -> Dict[str, tf.Tensor]:
        """One step; the replica-averaged loss terms as scalars."""
        return {k: v[0] for k, v in self.run([dist_batch], step).items()}
