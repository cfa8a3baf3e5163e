"""One worker of the two-process MultiWorkerMirroredStrategy tests (run by test_multiworker.py).

``train`` mode: pre-trains a tiny model through ``csp_tf.train.pretrain``.
``negatives`` mode: runs two steps (one ``TrainStep.run`` call) of the cross-replica-negatives
check on this worker's half of a fixed global batch, with ``pretrain.cross_replica_negatives``
on or off, and writes the per-step loss terms and the weights before and after.
``timing`` mode: times steps at the demo shapes with the flag on and off.
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from train_world import toy_world  # noqa: E402 - after the path


def tiny_config():
    from csp_tf.configs import get_preset

    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 8
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 2, 64
    cfg.runtime.progress, cfg.runtime.jit_compile = False, "off"
    return cfg


def negatives_config(cross: bool):
    """No dropout and a zero weight on the random-negative term: the two workers' random
    draws (seeded by replica id) then leave the weights alone, so a single replica holding the
    concatenated batch must reach the same loss and weights."""
    cfg = tiny_config()
    cfg.location_encoder.dropout = 0.0
    cfg.pretrain.loss, cfg.pretrain.simcse_weight = "contsoftmaxsym", 0.5
    cfg.pretrain.rand_sample_weight, cfg.pretrain.temp_inbatch = 0.0, 0.5
    cfg.pretrain.cross_replica_negatives = cross
    return cfg


def global_batch(rows: int = 64):
    w = toy_world()
    return {"lon_lat": w["lon_lat"][:rows], "image_features": w["image_features"][:rows]}


def run_steps(cfg, strategy, shard_fn, steps: int, init_weights=None, timed: int = 0):
    """Builds the model under ``strategy`` and runs ``steps`` steps in one ``TrainStep.run``
    call; returns (per-step terms, weights before, weights after, seconds per step of
    ``timed`` further one-step calls after a warm-up call)."""
    import tensorflow as tf

    from csp_tf.models import build_csp_model
    from csp_tf.train import runtime
    from csp_tf.train.stages import make_optimizer
    from csp_tf.train.steps import TrainStep, make_pretrain_loss, pretrain_variables

    runtime.set_global_seed(cfg.runtime.seed)
    with strategy.scope():
        model = build_csp_model(cfg)
        model.location_embedding(tf.zeros([1, 2]), training=False)
        model.image_embedding(tf.zeros([1, cfg.data.feature_dim]))
        if init_weights is not None:
            for v, w in zip(pretrain_variables(model), init_weights):
                v.assign(w)
        opt = make_optimizer(cfg.pretrain.lr, "float32")
        opt.build(pretrain_variables(model))
    before = [v.numpy() for v in pretrain_variables(model)]
    ds = strategy.distribute_datasets_from_function(
        lambda ctx: tf.data.Dataset.from_tensors(shard_fn(ctx)).repeat(steps))
    step = TrainStep(make_pretrain_loss(model, cfg.pretrain), opt, pretrain_variables(model),
                     strategy, cfg.runtime.seed, 1, False)
    batches = list(ds)
    terms = {k: v.numpy().tolist() for k, v in step.run(batches, 0).items()}
    after = [v.numpy() for v in pretrain_variables(model)]
    seconds = None
    if timed:
        float(step(batches[0], steps)["loss"])
        t0 = time.perf_counter()
        for i in range(timed):
            float(step(batches[0], steps + 1 + i)["loss"])
        seconds = (time.perf_counter() - t0) / timed
    return terms, before, after, seconds


def _shard(batch, ctx):
    import tensorflow as tf

    n = len(batch["lon_lat"]) // ctx.num_input_pipelines
    lo = ctx.input_pipeline_id * n
    return {k: tf.constant(v[lo:lo + n]) for k, v in batch.items()}


def main(mode: str, out_dir: str, result_path: str, *args: str) -> None:
    from csp_tf.train import runtime

    if mode == "train":
        from csp_tf.train import from_arrays, pretrain

        cfg = tiny_config()
        cfg.runtime.distribution = "multi_worker"
        cfg.runtime.steps_per_execution = 3
        r = pretrain(cfg, from_arrays(toy_world(), 64, seed=0), out_dir)
        np.savez(result_path, *[v.numpy() for v in r.model.location_encoder.weights])
        with open(result_path + ".json", "w") as f:
            json.dump({"history": r.history, "completed": r.completed}, f)
    elif mode == "negatives":
        strategy = runtime.make_strategy("multi_worker")
        batch = global_batch()
        out = {}
        for cross in (False, True):
            terms, before, after, _ = run_steps(negatives_config(cross), strategy,
                                                lambda ctx: _shard(batch, ctx), steps=2)
            out[f"cross={cross}"] = terms
            np.savez(f"{result_path}.cross{int(cross)}.npz", *before, *after)
        with open(result_path + ".json", "w") as f:
            json.dump(out, f)
    elif mode == "timing":
        import tensorflow as tf

        strategy = runtime.make_strategy("multi_worker")
        per_worker, steps = int(args[0]), int(args[1])
        rng = np.random.default_rng(0)
        from csp_tf.configs import get_preset

        out = {}
        for cross in (False, True, False, True):
            cfg = get_preset("demo")
            cfg.data.num_classes, cfg.data.feature_dim = 10, 64
            cfg.runtime.jit_compile = "off"
            cfg.pretrain.cross_replica_negatives = cross
            batch = {"lon_lat": np.stack([rng.uniform(-180, 180, 2 * per_worker),
                                          rng.uniform(-90, 90, 2 * per_worker)], 1).astype(np.float32),
                     "image_features": rng.normal(size=(2 * per_worker, 64)).astype(np.float32)}
            _, _, _, sec = run_steps(cfg, strategy, lambda ctx: _shard(batch, ctx), steps=1,
                                     timed=steps)
            out.setdefault(f"cross={cross}", []).append(sec)
        with open(result_path + ".json", "w") as f:
            json.dump({"per_worker_batch": per_worker, "steps": steps,
                       "seconds_per_step": out, "tf": tf.__version__}, f)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
