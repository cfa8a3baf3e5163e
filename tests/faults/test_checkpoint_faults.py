"""Fault injection on checkpoints: a renamed layer or a corrupt file is a
clear error naming what is missing or which file is bad, never a silent fresh start.

Both restore paths are covered: the resume of a stage (``stages._restore``, through
``pretrain``/``finetune``) and the base model of fine-tuning (``stages.load_base_model``).
"""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import get_preset
from csp_tf.models import build_csp_model
from csp_tf.train.checkpoint_check import CheckpointError
from csp_tf.train.stages import _restore, load_base_model, make_optimizer


def _config():
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 8
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    cfg.runtime.progress, cfg.runtime.jit_compile = False, "off"
    return cfg


def _perturb(variables, seed):
    rng = np.random.default_rng(seed)
    for v in variables:
        x = v.numpy()
        v.assign(x + rng.normal(scale=0.3, size=x.shape).astype(x.dtype))


def _model_and_optimizer(cfg, seed=1):
    model = build_csp_model(cfg)
    optimizer = make_optimizer(1e-3, "float32")
    optimizer.build(model.location_encoder.trainable_variables
                    + model.class_head.trainable_variables)
    _perturb(model.weights, seed)
    _perturb(optimizer.variables[2:], seed + 1)  # momentums / velocities (not iterations, lr)
    return model, optimizer


def _write_base(base_dir, cfg, checkpoint):
    os.makedirs(base_dir, exist_ok=True)
    cfg.save(os.path.join(base_dir, "config.yaml"))
    return tf.train.CheckpointManager(checkpoint, os.path.join(base_dir, "checkpoints"), 2).save()


def _renamed(model):
    """The model's checkpoint as a program with the encoder's ``network`` renamed writes it."""
    encoder = model.location_encoder
    return tf.train.Checkpoint(model=tf.train.Checkpoint(
        location_encoder=tf.train.Checkpoint(position_encoder=encoder.position_encoder,
                                             mlp=encoder.network),
        class_head=model.class_head, img_dec=model.img_dec))


def _values(variables):
    return [v.numpy() for v in variables]


# --- load_base_model ----------------------------------------------------------------------
@pytest.mark.parametrize("carry_optimizer", [False, True])
def test_base_model_loads_every_encoder_weight_and_keeps_the_class_head(tmp_path,
                                                                        carry_optimizer):
    cfg = _config()
    base, base_opt = _model_and_optimizer(cfg, seed=1)
    _write_base(str(tmp_path / "base"), cfg,
                tf.train.Checkpoint(model=base, optimizer=base_opt))
    model, optimizer = build_csp_model(cfg), make_optimizer(1e-3, "float32")
    optimizer.build(model.location_encoder.trainable_variables
                    + model.class_head.trainable_variables)
    head_before = model.class_head.kernel.numpy()
    load_base_model(model, optimizer if carry_optimizer else None, str(tmp_path / "base"), cfg)
    for got, want in zip(_values(model.location_encoder.weights),
                         _values(base.location_encoder.weights)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.img_dec.kernel.numpy(), base.img_dec.kernel.numpy())
    # The class head keeps its fresh value, even though the optimizer tracks it.
    np.testing.assert_array_equal(model.class_head.kernel.numpy(), head_before)
    if carry_optimizer:
        for got, want in zip(_values(optimizer.variables[2:]), _values(base_opt.variables[2:])):
            np.testing.assert_array_equal(got, want)


def test_base_model_with_a_renamed_layer_fails_naming_the_missing_weights(tmp_path):
    cfg = _config()
    base, _ = _model_and_optimizer(cfg)
    _write_base(str(tmp_path / "base"), cfg, _renamed(base))
    model = build_csp_model(cfg)
    with pytest.raises(CheckpointError) as err:
        load_base_model(model, None, str(tmp_path / "base"), cfg)
    message = str(err.value)
    assert "load base model" in message and "location encoder:" in message
    assert "location_encoder/ffn/linear_0/kernel" in message and "ckpt-1" in message


def test_base_model_without_optimizer_state_fails_when_it_is_carried(tmp_path):
    cfg = _config()
    base, _ = _model_and_optimizer(cfg)
    _write_base(str(tmp_path / "base"), cfg, tf.train.Checkpoint(model=base))  # no optimizer
    model, optimizer = build_csp_model(cfg), make_optimizer(1e-3, "float32")
    optimizer.build(model.location_encoder.trainable_variables)
    with pytest.raises(CheckpointError, match="optimizer state: "):
        load_base_model(model, optimizer, str(tmp_path / "base"), cfg)
    load_base_model(model, None, str(tmp_path / "base"), cfg)  # weights alone: fine


# --- resume (_restore) --------------------------------------------------------------------
def _manager(directory, model, optimizer):
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer,
                               pretrain_state=tf.train.Checkpoint(global_step=step))
    return tf.train.CheckpointManager(ckpt, directory, max_to_keep=2), step


def test_resume_restores_everything(tmp_path):
    cfg = _config()
    model, optimizer = _model_and_optimizer(cfg, seed=3)
    manager, step = _manager(str(tmp_path), model, optimizer)
    step.assign(17)
    manager.save()
    fresh, fresh_opt = build_csp_model(cfg), make_optimizer(1e-3, "float32")
    fresh_opt.build(fresh.location_encoder.trainable_variables
                    + fresh.class_head.trainable_variables)
    manager2, step2 = _manager(str(tmp_path), fresh, fresh_opt)
    assert _restore(manager2, "pretrain")
    assert int(step2.numpy()) == 17
    for got, want in zip(_values(fresh.weights), _values(model.weights)):
        np.testing.assert_array_equal(got, want)


def test_resume_from_a_checkpoint_with_a_renamed_layer_fails(tmp_path):
    cfg = _config()
    model, _ = _model_and_optimizer(cfg)
    tf.train.CheckpointManager(_renamed(model), str(tmp_path), 2).save()
    fresh, opt = build_csp_model(cfg), make_optimizer(1e-3, "float32")
    manager, _ = _manager(str(tmp_path), fresh, opt)
    with pytest.raises(CheckpointError) as err:
        _restore(manager, "pretrain")
    assert "resume pretrain" in str(err.value)
    assert "location_encoder/ffn/linear_1/kernel" in str(err.value)


def test_pretrain_resume_with_a_renamed_layer_stops_before_training(tmp_path):
    """Through the public stage: the checkpoint dir of an output holds a checkpoint written
    by a program whose encoder layer had another name → CheckpointError, no training."""
    from csp_tf.train import from_arrays, pretrain

    cfg = _config()
    model, _ = _model_and_optimizer(cfg)
    tf.train.CheckpointManager(_renamed(model), str(tmp_path / "checkpoints"), 2).save()
    rng = np.random.default_rng(0)
    world = {"lon_lat": rng.uniform(-50, 50, (64, 2)).astype(np.float32),
             "image_features": rng.normal(size=(64, 8)).astype(np.float32),
             "label": rng.integers(0, 4, 64)}
    with pytest.raises(CheckpointError, match="resume pretrain"):
        pretrain(cfg, from_arrays(world, 32, seed=0), str(tmp_path))
    assert not os.path.exists(tmp_path / "model.keras")


# --- corrupt files --------------------------------------------------------------------------
def _corrupt(path):
    data = bytearray(open(path, "rb").read())
    for i in range(0, len(data), 7):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("damage", ["data", "index", "truncated data"])
def test_corrupt_checkpoint_file_is_named(tmp_path, damage):
    cfg = _config()
    model, optimizer = _model_and_optimizer(cfg)
    prefix = _write_base(str(tmp_path / "base"), cfg,
                         tf.train.Checkpoint(model=model, optimizer=optimizer))
    (data_file,) = glob.glob(prefix + ".data-*")
    if damage == "data":
        _corrupt(data_file)
    elif damage == "index":
        _corrupt(prefix + ".index")
    else:
        with open(data_file, "r+b") as f:
            f.truncate(os.path.getsize(data_file) // 2)
    fresh = build_csp_model(cfg)
    before = _values(fresh.location_encoder.weights)
    with pytest.raises(CheckpointError) as err:
        load_base_model(fresh, None, str(tmp_path / "base"), cfg)
    assert prefix in str(err.value) and os.path.basename(data_file) in str(err.value)
    assert "corrupt" in str(err.value)
    # Nothing was half-restored.
    for got, want in zip(_values(fresh.location_encoder.weights), before):
        np.testing.assert_array_equal(got, want)
    manager, _ = _manager(os.path.dirname(prefix), fresh, make_optimizer(1e-3, "float32"))
    with pytest.raises(CheckpointError, match="resume finetune: checkpoint .* cannot be read"):
        _restore(manager, "finetune")


# --- a full disk ---------------------------------------------------------------------------
def test_a_full_disk_at_a_checkpoint_or_the_model_file_loses_nothing(tmp_path, small_fs):
    """ENOSPC on a real size-limited file system (a tmpfs the test mounts). (1) At a checkpoint
    save: DiskFullError naming the checkpoint directory, the space needed and free; the last
    complete checkpoint stays the latest, TF's partial ``_temp`` directory is removed. (2) The
    checkpoint fits but model.keras does not: DiskFullError naming the output; no model.keras,
    history.json or temporary file is left (before: a raw TF error, a ``_temp`` directory, and
    the finished epochs' history was lost). (3) With space again the rerun completes, the
    history holds every epoch once and model.keras holds the trained weights."""
    from csp_tf.diskspace import DiskFullError
    from csp_tf.models.loading import load_csp_model
    from csp_tf.train import from_arrays, pretrain

    cfg = _config()
    cfg.pretrain.epochs = 2
    rng = np.random.default_rng(0)
    world = {"lon_lat": rng.uniform(-50, 50, (64, 2)).astype(np.float32),
             "image_features": rng.normal(size=(64, 8)).astype(np.float32),
             "label": rng.integers(0, 4, 64)}
    out = os.path.join(small_fs.mount(8 << 20), "pre")
    checkpoints = os.path.join(out, "checkpoints")
    pretrain(cfg, from_arrays(world, 32, seed=0), out, max_steps=3)  # ckpt-2 (epoch 1), ckpt-3
    first = tf.train.latest_checkpoint(checkpoints)
    checkpoint_bytes = sum(os.path.getsize(p) for p in glob.glob(first + ".*"))

    filler = small_fs.fill(out, 4 << 10)
    with pytest.raises(DiskFullError) as err:  # (1) the end-of-epoch-2 checkpoint
        pretrain(cfg, from_arrays(world, 32, seed=0), out)
    message = str(err.value)
    for part in (checkpoints, "needs about", "free there", first):
        assert part in message, (part, message)
    assert tf.train.latest_checkpoint(checkpoints) == first  # still the complete one
    assert not [n for n in os.listdir(checkpoints) if n.endswith("_temp")]
    assert not os.path.exists(os.path.join(out, "model.keras"))

    os.remove(filler)
    filler = small_fs.fill(out, checkpoint_bytes + (12 << 10))  # (2) the checkpoint fits
    with pytest.raises(DiskFullError) as err:
        pretrain(cfg, from_arrays(world, 32, seed=0), out)
    message = str(err.value)
    assert out in message and "model.keras" in message and "free there" in message, message
    assert tf.train.latest_checkpoint(checkpoints) != first  # the last epoch's is saved
    left = sorted(os.listdir(out))
    assert "model.keras" not in left and "history.json" not in left, left
    assert not [n for n in left if n.startswith(".tmp-")], left

    os.remove(filler)  # (3)
    done = pretrain(cfg, from_arrays(world, 32, seed=0), out)
    assert done.completed and [h["epoch"] for h in done.history] == [1, 2]
    for got, want in zip(_values(load_csp_model(out).weights), _values(done.model.weights)):
        np.testing.assert_array_equal(got, want)
