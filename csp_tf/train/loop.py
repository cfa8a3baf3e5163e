"""The epoch loop shared by the stages: checkpoints that resume mid-epoch, TensorBoard scalars,
a progress bar, and per-epoch learning rates."""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from csp_tf import preemption
from csp_tf.train.checkpoint_save import save_checkpoint
from csp_tf.train.inputs import StageInput
from csp_tf.train.steps import TrainStep

log = logging.getLogger("csp_tf")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; the message names the stage, the step, the non-finite loss
    terms and the last good checkpoint (the one on disk: nothing is saved after that step)."""


@dataclass
class LoopState:
    """Checkpointed counters of one stage."""

    epoch: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))
    step_in_epoch: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))
    global_step: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))


@dataclass
class LoopResult:
    history: List[Dict[str, float]]
    completed: bool
    steps_run: int
    seconds: float
    # Set when a stop signal ended the run early, after its checkpoint was saved: the stage
    # raises it once its history is written (csp_tf.preemption).
    preempted: Optional[preemption.Preempted] = None


def run_epochs(*, stage: str, train_step: TrainStep, stage_input: StageInput, epochs: int,
               state: LoopState, manager: Optional[tf.train.CheckpointManager],
               set_lr: Callable[[int], float], strategy: tf.distribute.Strategy,
               log_dir: Optional[str] = None, checkpoint_every_steps: int = 0,
               log_every_steps: int = 50, progress: bool = True, max_steps: Optional[int] = None,
               steps_per_execution: int = 1,
               on_epoch_end: Optional[Callable[[int, Dict[str, float]], Dict[str, float]]] = None,
               ) -> LoopResult:
    """Runs ``epochs`` epochs from wherever ``state`` says (restored by the caller).

    ``max_steps`` stops this invocation after that many steps (saving a checkpoint first) so a
    run can be split over preemptible slots; the next call resumes at the same batch.
    ``steps_per_execution``: steps run per ``tf.function`` call (one host sync per call); the
    weights, masks, negatives, per-step logs and checkpoints are those of one step per call.
    A stop signal (SIGTERM, ``csp_tf.preemption``) ends the run at the next call boundary
    with a checkpoint: ``LoopResult.preempted`` is set. A NaN/inf loss raises
    ``NonFiniteLossError`` before anything more is saved; a checkpoint is never written with
    non-finite weights (``checkpoint_save``).
    """
    writer = tf.summary.create_file_writer(os.path.join(log_dir, stage)) if log_dir else None
    history: List[Dict[str, float]] = []
    steps_run, t0 = 0, time.time()
    start_epoch = int(state.epoch.numpy())
    # The global step the newest checkpoint holds (-1: none): a save at the same state is skipped.
    saved_at = (int(state.global_step.numpy())
                if manager is not None and manager.latest_checkpoint else -1)

    def save() -> None:
        nonlocal saved_at
        step_now = int(state.global_step.numpy())
        if manager is not None and step_now != saved_at:
            save_checkpoint(manager, step_now, what=stage, variables=train_step.variables)
            saved_at = step_now

    for epoch in range(start_epoch, epochs):
        lr = set_lr(epoch)
        skip = int(state.step_in_epoch.numpy())
        ds = stage_input.dataset_fn(epoch)
        if skip:
            log.info("%s: resuming epoch %d at step %d", stage, epoch + 1, skip)
            ds = ds.skip(skip)
        dist = strategy.experimental_distribute_dataset(ds)
        bar = _progress_bar(progress, stage, epoch, epochs, stage_input.steps_per_epoch, skip)
        sums: Dict[str, float] = {}
        n = 0
        batches = _named_data_errors(dist, stage_input)
        while True:
            signal_name = preemption.consume()
            if signal_name is not None:
                save()
                if bar is not None:
                    bar.close()
                stop = preemption.Preempted(
                    preemption.preempted_message(
                        stage, signal_name, epoch, int(state.step_in_epoch.numpy()),
                        int(state.global_step.numpy()),
                        manager.latest_checkpoint if manager is not None else None),
                    stage=stage, signal_name=signal_name,
                    checkpoint=manager.latest_checkpoint if manager is not None else None)
                log.warning("%s", stop)
                return LoopResult(history, False, steps_run, time.time() - t0, preempted=stop)
            # A call never crosses a checkpoint or max_steps boundary (nor an epoch: the
            # iterator ends), so checkpoints land on the same steps as with one step per call.
            size = steps_per_execution
            if checkpoint_every_steps and manager is not None:
                size = min(size, checkpoint_every_steps - steps_run % checkpoint_every_steps)
            if max_steps is not None:
                size = max(1, min(size, max_steps - steps_run))
            chunk = list(itertools.islice(batches, size))
            if not chunk:
                break
            first = int(state.global_step.numpy())
            stacked = {k: v.numpy() for k, v in train_step.run(chunk, first).items()}
            for i in range(len(chunk)):
                terms = {k: float(v[i]) for k, v in stacked.items()}
                bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
                if bad:
                    raise NonFiniteLossError(
                        f"{stage}: non-finite loss at epoch {epoch + 1}, step "
                        f"{int(state.step_in_epoch.numpy()) + 1} (global step {first + i + 1}): "
                        + ", ".join(f"{k}={v}" for k, v in bad.items())
                        + f" (all terms: {terms}). Stopped there; the last good checkpoint is "
                        + ((manager.latest_checkpoint or "none (none was written yet)")
                           if manager is not None else "none (this run keeps no checkpoints)")
                        + ". Lower the learning rate or check the inputs for extreme values.")
                state.global_step.assign_add(1)
                state.step_in_epoch.assign_add(1)
                steps_run += 1
                n += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                step = first + i
                if writer is not None and log_every_steps and step % log_every_steps == 0:
                    with writer.as_default(step=step):
                        for k, v in terms.items():
                            tf.summary.scalar(f"step/{k}", v)
            if bar is not None:
                bar.update(len(chunk))
                bar.set_postfix(loss=f"{terms['loss']:.4f}")
            if manager is not None and checkpoint_every_steps and steps_run % checkpoint_every_steps == 0:
                save()
            if max_steps is not None and steps_run >= max_steps:
                save()
                if bar is not None:
                    bar.close()
                return LoopResult(history, False, steps_run, time.time() - t0)
        if bar is not None:
            bar.close()
        metrics = {k: v / max(n, 1) for k, v in sums.items()}
        metrics.update(epoch=epoch + 1, lr=lr)
        if on_epoch_end is not None:
            metrics.update(on_epoch_end(epoch, metrics))
        history.append(metrics)
        log.log(_epoch_log_level(epoch, epochs), "%s epoch %d/%d: %s", stage, epoch + 1, epochs,
                ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch"))
        if writer is not None:
            with writer.as_default(step=epoch + 1):
                for k, v in metrics.items():
                    tf.summary.scalar(f"epoch/{k}", v)
        state.epoch.assign(epoch + 1)
        state.step_in_epoch.assign(0)
        if manager is not None:  # the counters changed: a new checkpoint even at the same step
            saved_at = -1
            save()
    if writer is not None:
        writer.flush()
    return LoopResult(history, True, steps_run, time.time() - t0)


def _named_data_errors(dist, stage_input: StageInput):
    """Iterates ``dist``; a corrupt TFRecord surfaces as an error naming the file."""
    it = iter(dist)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except tf.errors.DataLossError as e:
            if stage_input.explain_data_loss is None:
                raise
            raise stage_input.explain_data_loss(e) from None
        yield batch


def _progress_bar(enabled: bool, stage: str, epoch: int, epochs: int, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    # disable=None: a bar on a terminal; in logs and pipelines the per-epoch log line suffices.
    return tqdm(total=total, initial=initial, desc=f"{stage} {epoch + 1}/{epochs}", unit="step",
                leave=False, dynamic_ncols=True, disable=None)


def _epoch_log_level(epoch: int, epochs: int, lines: int = 10) -> int:
    """INFO for about ``lines`` evenly spaced epochs (always the first and the last), DEBUG for
    the others: a 500-epoch fine-tune shows 10 progress lines, not 500 (all are in history.json
    and TensorBoard)."""
    every = max(1, epochs // lines)
    shown = epoch == 0 or epoch + 1 == epochs or (epoch + 1) % every == 0
    return logging.INFO if shown else logging.DEBUG
