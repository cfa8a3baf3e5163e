"""The two training stages: ``pretrain`` (self-supervised, docs/reference.md §5–7.4) and
``finetune`` (few labels, docs/reference.md §7.5, plus the linear image classifier used for
fusion).

Each stage writes a self-describing directory::

    <out>/config.yaml         the ExperimentConfig that produced it (plus data shapes)
    <out>/checkpoints/        tf.train checkpoints (model, optimizer, loop counters): resumable
    <out>/model.keras         the Keras model, reloadable with keras.saving.load_model
    <out>/history.json        per-epoch metrics
    <out>/logs/<stage>/       TensorBoard scalars
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import keras
import tensorflow as tf

from csp_tf import diskspace
from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.models import CSPModel, build_csp_model
from csp_tf import preemption
from csp_tf.train import runtime
from csp_tf.train.inputs import Arrays, FeatureStats, StageInput
from csp_tf.train.checkpoint_save import save_checkpoint
from csp_tf.train.loop import LoopResult, LoopState, run_epochs
from csp_tf.train.head_probe import probe_head_if_asked
from csp_tf.train.steps import (TrainStep, finetune_variables, make_finetune_loss,
                                make_image_classifier_loss, make_pretrain_loss, pretrain_variables)

log = logging.getLogger("csp_tf")

CONFIG_FILE, KERAS_FILE, HISTORY_FILE = "config.yaml", "model.keras", "history.json"
_SALT_PRETRAIN, _SALT_FINETUNE, _SALT_IMAGE = 1, 2, 3


@dataclass
class StageResult:
    model: CSPModel
    output_dir: str
    history: List[Dict[str, float]]
    completed: bool


def make_optimizer(lr: float, policy: str) -> keras.optimizers.Optimizer:
    """Adam with PyTorch's ε = 1e-8 (docs/reference.md §7.2); loss-scaled under mixed_float16."""
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    return keras.optimizers.LossScaleOptimizer(opt) if policy == "mixed_float16" else opt


def _set_lr(optimizer, lr: float) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.learning_rate.assign(lr)
    return lr


class _Session:
    """Runtime setup common to both stages: seeds, precision, strategy, model, optimizer."""

    def __init__(self, config: ExperimentConfig, output_dir: str, lr: float,
                 feature_stats: Optional[FeatureStats] = None, place_memory_size: int = 0):
        self.config = config.validate()
        if not config.data.num_classes or not config.data.feature_dim:
            raise ConfigError("data.num_classes and data.feature_dim must be set (read them from "
                              "the data with csp_tf.train.DataRoot.configure)")
        self.output_dir = output_dir
        os.makedirs(output_dir, exist_ok=True)
        rt = config.runtime
        # First: MultiWorkerMirroredStrategy must configure collectives before any other TF op.
        self.strategy = runtime.make_strategy(rt.distribution)
        runtime.set_global_seed(rt.seed)
        self.policy = runtime.configure_precision(rt.mixed_precision)
        self.jit = runtime.use_jit(rt.jit_compile)
        self.chief = runtime.is_chief()
        with self.strategy.scope():
            self.model = build_csp_model(config, place_memory_size=place_memory_size)
            if config.data.standardize_features:
                if feature_stats is None:
                    log.warning("data.standardize_features is on but no feature statistics were "
                                "given (data root without feature_stats?): features pass "
                                "unstandardised; re-ingest or set it to false")
                else:
                    self.model.set_feature_stats(*feature_stats)
            self.optimizer = make_optimizer(lr, self.policy)
            # Built over every location-side variable so its state carries across stages
            # (one Adam for both stages in the reference, docs/reference.md §7.2).
            self.optimizer.build(self.location_side_variables())
        log.info("runtime: policy=%s jit_compile=%s strategy=%s replicas=%d", self.policy, self.jit,
                 type(self.strategy).__name__, self.strategy.num_replicas_in_sync)

    def location_side_variables(self) -> List[tf.Variable]:
        seen, out = set(), []
        for v in pretrain_variables(self.model) + finetune_variables(self.model):
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    def checkpoint_dir(self) -> str:
        # Non-chief workers of a multi-worker run write to a scratch dir (the TF recipe).
        d = os.path.join(self.output_dir, "checkpoints")
        return d if self.chief else os.path.join(self.output_dir, f"worker_tmp_{os.getpid()}")

    def save_artifacts(self, history: List[Dict[str, float]]) -> None:
        """config.yaml, model.keras and history.json, each written under a temporary name and
        renamed (history.json last: it marks a finished stage), so a full disk or a kill never
        leaves a partial file under the final name; a full disk is a DiskFullError."""
        if not self.chief:
            return
        tmp = os.path.join(self.output_dir, f".tmp-{os.getpid()}-")
        written = []
        try:
            self.config.save(tmp + CONFIG_FILE)
            written.append(CONFIG_FILE)
            self.model.save(tmp + KERAS_FILE)  # Keras wants the .keras suffix: kept
            written.append(KERAS_FILE)
            for name in written:
                os.replace(tmp + name, os.path.join(self.output_dir, name))
            diskspace.write_atomic(os.path.join(self.output_dir, HISTORY_FILE),
                                   json.dumps(history, indent=2).encode("utf-8"))
            partial = os.path.join(self.output_dir, "history.partial.json")
            if os.path.exists(partial):
                os.remove(partial)
        except BaseException as exc:
            for name in (CONFIG_FILE, KERAS_FILE):
                if os.path.exists(tmp + name):
                    os.remove(tmp + name)
            full = diskspace.disk_full_error(
                exc, "saving the stage's model", self.output_dir,
                need=2 * sum(int(v.numpy().nbytes) for v in self.model.weights),
                kept=f"its checkpoints are complete: rerun to write {KERAS_FILE} again")
            if full is not None:
                raise full from exc
            raise


@preemption.stops_on_termination("pretrain")
def pretrain(config: ExperimentConfig, stage_input: StageInput, output_dir: str, *,
             max_steps: Optional[int] = None,
             feature_stats: Optional[FeatureStats] = None) -> StageResult:
    """Self-supervised pre-training with ``config.pretrain.loss``; resumes from ``output_dir``.
    ``feature_stats``: (mean, std) of the image features (the data root's metadata)."""
    pc = config.pretrain
    s = _Session(config, output_dir, pc.lr, feature_stats)
    stage_input.check_feature_dim(config.data.feature_dim, "pretrain")
    state = LoopState()
    ckpt = tf.train.Checkpoint(model=s.model, optimizer=s.optimizer, pretrain_state=_state_obj(state))
    manager = tf.train.CheckpointManager(ckpt, s.checkpoint_dir(), max_to_keep=2)
    _restore(manager, "pretrain")
    step = TrainStep(make_pretrain_loss(s.model, pc), s.optimizer, pretrain_variables(s.model),
                     s.strategy, config.runtime.seed, _SALT_PRETRAIN, s.jit)
    # The reference sets lr = unsuper_lr · lr_decay^epoch once (epoch 0 on a fresh run), then
    # keeps it constant for every pre-training epoch (docs/reference.md §7.4).
    result = run_epochs(stage="pretrain", train_step=step, stage_input=stage_input,
                        epochs=pc.epochs, state=state, manager=manager,
                        set_lr=lambda e: _set_lr(s.optimizer, pc.lr), strategy=s.strategy,
                        log_dir=os.path.join(output_dir, "logs"),
                        checkpoint_every_steps=config.runtime.checkpoint_every_steps,
                        log_every_steps=config.runtime.log_every_steps,
                        steps_per_execution=config.runtime.steps_per_execution,
                        progress=config.runtime.progress and s.chief, max_steps=max_steps)
    history = _merge_history(output_dir, result, s.chief)
    if result.preempted is not None:  # SIGTERM: checkpoint saved, history kept; stop here
        raise result.preempted
    if result.completed:
        s.save_artifacts(history)
    return StageResult(s.model, output_dir, history, result.completed)


@preemption.stops_on_termination("finetune")
def finetune(config: ExperimentConfig, stage_input: StageInput, image_input: StageInput,
             output_dir: str, *, base_model_dir: Optional[str] = None,
             max_steps: Optional[int] = None,
             on_epoch_end: Optional[Callable[[CSPModel, int], Dict[str, float]]] = None,
             feature_stats: Optional[FeatureStats] = None,
             image_arrays: Optional[Arrays] = None, validation: Optional[Arrays] = None,
             memory_arrays: Optional[Arrays] = None,
             head_arrays: Optional[Arrays] = None) -> StageResult:
    """Fine-tunes the location encoder + class head on labels, then fits the image classifier
    and (``finetune.fusion='calibrated'``) the fusion weights.

    ``base_model_dir``: a pre-training output dir. Its weights (and, with
    ``finetune.carry_optimizer_state``, its Adam state, the reference's [QUIRK]) are loaded;
    nothing is frozen and ``class_head`` starts from its initial value (docs/reference.md §7.5).
    Without it the location encoder trains from scratch (the Sup-only baseline).
    ``image_arrays``: the image probe's labeled rows as arrays, for the ``fullbatch`` solver
    (without them it falls back to ``minibatch`` epochs over ``image_input``).
    ``validation``: labeled val rows: choose the probe's L2 weight, the place memory's vote and
    the fusion on them.
    ``memory_arrays``: the labeled rows the place memory holds (when
    ``config.uses_place_memory()``; the location stage's label subset).
    ``head_arrays``: the labeled rows the class head is probed on before the first step (when
    ``finetune.head_init='probe'``; csp_tf.train.head_probe).
    All of them hold labeled rows only (``DataRoot.labeled``:
    ``csp_tf.train.data_root.stage_inputs`` builds every argument here but the config and the
    directories).
    """
    fc = config.finetune
    from csp_tf.memory_calibration import memory_size

    use_memory = config.uses_place_memory()
    if use_memory and memory_arrays is None:
        log.warning("finetune.place_memory is on but no memory_arrays were given "
                    "(csp_tf.train.stage_inputs builds them): the model has no place memory")
    s = _Session(config, output_dir, fc.lr, feature_stats,
                 place_memory_size=memory_size(memory_arrays) if use_memory else 0)
    for inp in (stage_input, image_input):
        inp.check_feature_dim(config.data.feature_dim, "finetune")
    state, image_state = LoopState(), LoopState()
    post_fit_done = tf.Variable(0, dtype=tf.int64, trainable=False)
    image_opt = make_optimizer(fc.image_classifier_lr, s.policy)
    ckpt = tf.train.Checkpoint(model=s.model, optimizer=s.optimizer, image_optimizer=image_opt,
                               finetune_state=_state_obj(state), image_state=_state_obj(image_state),
                               post_fit_done=post_fit_done)
    manager = tf.train.CheckpointManager(ckpt, s.checkpoint_dir(), max_to_keep=2)
    head_fit: List[Dict[str, object]] = []  # a resumed stage was probed before it stopped
    if not _restore(manager, "finetune"):
        if base_model_dir:
            load_base_model(s.model, s.optimizer if fc.carry_optimizer_state else None,
                            base_model_dir, config)
        head_fit = probe_head_if_asked(s.model, fc, head_arrays, validation, config.runtime.seed)
    step = TrainStep(make_finetune_loss(s.model, fc), s.optimizer,
                     finetune_variables(s.model, fc.freeze_encoder),
                     s.strategy, config.runtime.seed, _SALT_FINETUNE, s.jit)
    callback = (lambda e, m: on_epoch_end(s.model, e)) if on_epoch_end else None
    common = dict(strategy=s.strategy, log_dir=os.path.join(output_dir, "logs"),
                  checkpoint_every_steps=config.runtime.checkpoint_every_steps,
                  log_every_steps=config.runtime.log_every_steps,
                  steps_per_execution=config.runtime.steps_per_execution,
                  progress=config.runtime.progress and s.chief)
    # A frozen encoder under the probed head: the probe already solved the head's (regularised,
    # convex) problem to convergence, so there is nothing left for gradient steps to do.
    probe_only = fc.freeze_encoder and fc.head_init == "probe"
    epochs = 0 if probe_only else finetune_epochs(fc, stage_input.steps_per_epoch)
    result = run_epochs(stage="finetune", train_step=step, stage_input=stage_input,
                        epochs=epochs, state=state, manager=manager,
                        set_lr=lambda e: _set_lr(s.optimizer, finetune_lr(fc, e, epochs)),
                        max_steps=max_steps, on_epoch_end=callback, **common)
    history = head_fit + list(result.history)
    fullbatch = fc.image_classifier_solver == "fullbatch" and image_arrays is not None
    if result.completed and not fullbatch:
        image_step = TrainStep(make_image_classifier_loss(s.model), image_opt,
                               s.model.image_classifier.trainable_variables, s.strategy,
                               config.runtime.seed, _SALT_IMAGE, s.jit)
        remaining = None if max_steps is None else max_steps - result.steps_run
        img = run_epochs(stage="image_classifier", train_step=image_step, stage_input=image_input,
                         epochs=fc.image_classifier_epochs, state=image_state, manager=manager,
                         set_lr=lambda e: _set_lr(image_opt, fc.image_classifier_lr),
                         max_steps=remaining, **common)
        history += [dict(h, stage="image_classifier") for h in img.history]
        result = LoopResult(history, img.completed, result.steps_run + img.steps_run,
                            result.seconds + img.seconds, preempted=img.preempted)
    if result.completed and not int(post_fit_done.numpy()):
        history += _post_fit(s, fc, image_arrays if fullbatch else None, validation,
                             memory_arrays)
        post_fit_done.assign(1)
        if s.chief:
            save_checkpoint(manager, int(state.global_step.numpy()) + 1)
    history = _merge_history(output_dir, LoopResult(history, result.completed, 0, 0), s.chief)
    if result.preempted is not None:  # SIGTERM: checkpoint saved, history kept; stop here
        raise result.preempted
    if result.completed:
        s.save_artifacts(history)
    return StageResult(s.model, output_dir, history, result.completed)


def finetune_epochs(fc, steps_per_epoch: int) -> int:
    """``finetune.epochs``, raised so the stage runs at least ``finetune.min_steps`` steps."""
    if fc.epochs == 0 or fc.min_steps <= 0:
        return fc.epochs
    return max(fc.epochs, -(-fc.min_steps // max(steps_per_epoch, 1)))


def finetune_lr(fc, epoch: int, epochs: int) -> float:
    """``exp``: lr · lr_decay^epoch (docs/reference.md §7.5); ``cosine``: cosine decay to 0 over
    ``epochs``."""
    if fc.lr_schedule == "cosine":
        return fc.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    return fc.lr * fc.lr_decay ** epoch


def _post_fit(s: "_Session", fc, image_arrays: Optional[Arrays],
              validation: Optional[Arrays], memory_arrays: Optional[Arrays] = None
              ) -> List[Dict[str, float]]:
    """Fits what is chosen on val after the location model: the full-batch image probe, the
    place memory's vote and the calibrated fusion (which sees P(y|loc) with the memory).
    Returns history entries describing the choices."""
    from csp_tf.calibration import calibrate_fusion
    from csp_tf.memory_calibration import calibrate_place_memory
    from csp_tf.configs import parse_float_list
    from csp_tf.train.linear_probe import fit_linear_probe

    out: List[Dict[str, float]] = []
    val = validation
    if image_arrays is not None:
        grid = ([fc.image_classifier_l2] if val is None
                else parse_float_list("finetune.image_classifier_l2_grid", fc.image_classifier_l2_grid))
        fit = fit_linear_probe(
            s.model, image_arrays["image_features"], image_arrays["label"], l2_grid=grid,
            steps=fc.image_classifier_steps, lr=fc.image_classifier_fullbatch_lr,
            max_rounds=fc.image_classifier_max_rounds,
            seed=s.config.runtime.seed,
            val_features=None if val is None else val["image_features"],
            val_labels=None if val is None else val["label"])
        out.append({"stage": "image_probe", "l2": fit.l2, "val_top1": fit.val_top1, "grid": fit.grid})
    if s.model.place_memory is not None:
        if memory_arrays is None:
            raise ValueError("the model has a place memory but no memory_arrays were given")
        choice = calibrate_place_memory(s.model, memory_arrays, val)
        out.append(dict({k: v for k, v in choice.items() if isinstance(v, (int, float))},
                        stage="place_memory"))
    if fc.fusion == "calibrated" and fc.epochs > 0:
        if val is None:
            log.warning("finetune.fusion='calibrated' but no validation rows were given: the "
                        "fusion keeps α = β = 1, γ = 0 (the plain product)")
        else:
            prior_rows = image_arrays if image_arrays is not None else val
            choice = calibrate_fusion(s.model, val, prior_rows["label"])
            out.append(dict({k: v for k, v in choice.items() if isinstance(v, (int, float))},
                            stage="fusion"))
    return out


def load_base_model(model: CSPModel, optimizer, base_model_dir: str,
                    config: ExperimentConfig) -> None:
    """Loads a pre-trained stage's weights (and optimizer state) into ``model``; from an
    encoder directory (csp_tf.train.base_encoder), the location encoder's weights only."""
    from csp_tf.train.base_encoder import is_encoder_dir, load_base_encoder

    if is_encoder_dir(base_model_dir):
        return load_base_encoder(model, base_model_dir, config, optimizer is not None)
    base_cfg_path = os.path.join(base_model_dir, CONFIG_FILE)
    if not os.path.exists(base_cfg_path):
        raise ConfigError(f"base model dir {base_model_dir!r} has no {CONFIG_FILE}: is it a "
                          "csp-tf pre-training output?")
    base = ExperimentConfig.load(base_cfg_path)
    if base.location_encoder.model_fields() != config.location_encoder.model_fields():
        raise ConfigError(
            "the base model's location_encoder config differs from this run's: "
            f"{base.location_encoder} vs {config.location_encoder}")
    if base.data.feature_dim != config.data.feature_dim:
        raise ConfigError(f"base model feature_dim={base.data.feature_dim} but this run's data "
                          f"has feature_dim={config.data.feature_dim}")
    path = tf.train.latest_checkpoint(os.path.join(base_model_dir, "checkpoints"))
    if path is None:
        raise ConfigError(f"no checkpoint under {base_model_dir}/checkpoints")
    # Only the location encoder and the image-side heads are taken: the class head keeps its
    # fresh initial value, as in the reference, and its shape may differ from the base's.
    parts = {"location_encoder": model.location_encoder}
    if model.img_dec is not None:
        parts["img_dec"] = model.img_dec
    if model.loc_dec is not None:
        parts["loc_dec"] = model.loc_dec
    from csp_tf.train.checkpoint_check import restore_checked

    restore = tf.train.Checkpoint(model=tf.train.Checkpoint(**parts))
    required = {"location encoder": model.location_encoder.weights}
    if optimizer is not None:
        restore = tf.train.Checkpoint(model=tf.train.Checkpoint(**parts), optimizer=optimizer)
        required["optimizer state"] = optimizer.variables
    # Keras optimizers track the variables they update, so restoring the optimizer would also
    # restore those (the class head among them): keep every weight outside ``parts`` as is.
    taken = {id(v) for part in parts.values() for v in part.weights}
    kept = [(v, v.numpy()) for v in model.weights if id(v) not in taken]
    counts = restore_checked(restore, path, required=required, what="load base model",
                             optional={k: v.weights for k, v in parts.items()
                                       if k != "location_encoder"})
    for variable, value in kept:
        variable.assign(value)
    log.info("loaded base model from %s (%s)%s", path,
             ", ".join(f"{k}: {n} variables" for k, n in counts.items()),
             " with optimizer state" if optimizer is not None else "")


def _state_obj(state: LoopState) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(epoch=state.epoch, step_in_epoch=state.step_in_epoch,
                               global_step=state.global_step)


def _restore(manager: tf.train.CheckpointManager, stage: str) -> bool:
    """Resumes from the latest checkpoint, if any. Every variable that exists now (model,
    optimizers, loop counters) must be in it, and it must be readable: otherwise
    CheckpointError names the missing variables or the corrupt files."""
    if manager.latest_checkpoint:
        from csp_tf.train.checkpoint_check import all_variables, restore_checked

        restore_checked(manager.checkpoint, manager.latest_checkpoint, resume=True,
                        required={"checkpoint": all_variables(manager.checkpoint)},
                        what=f"resume {stage}")
        log.info("%s: resumed from %s", stage, manager.latest_checkpoint)
        return True
    return False


def _merge_history(output_dir: str, result: LoopResult, chief: bool = True
                   ) -> List[Dict[str, float]]:
    """Appends this invocation's epochs to those of earlier (interrupted) invocations. Only the
    chief reads and writes the stage's files: a non-chief worker of a multi-worker run shares
    ``output_dir`` with it, and its epochs written there ended up in the chief's history."""
    if not chief:
        return list(result.history)
    path = os.path.join(output_dir, "history.partial.json")
    final = os.path.join(output_dir, HISTORY_FILE)
    if result.completed and not result.history and os.path.exists(final):
        return json.load(open(final))  # re-run of a finished stage: nothing new to add
    old = json.load(open(path)) if os.path.exists(path) else []
    merged = old + result.history
    # Kept until save_artifacts has written history.json: a run that fails there (a full disk)
    # must not lose the finished epochs.
    diskspace.write_atomic(path, json.dumps(merged).encode("utf-8"))
    return merged
