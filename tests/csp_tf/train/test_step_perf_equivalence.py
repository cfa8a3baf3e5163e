"""The pre-training step's speed-ups keep its math: the uint32 hash draws the same
bits as the int64 one, a merged location-encoder call draws every pass's own dropout mask, and
the merged step's loss terms and gradients equal those of one call per pass."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.models import build_csp_model
from csp_tf.models.layers import SegmentSeeds, fold_seed, stateless_dropout
from csp_tf.random_ops import uniform, uniform_int64_reference
from csp_tf.train.steps import make_pretrain_loss, pretrain_variables


@pytest.mark.parametrize("seed", [[1, 2], [2 ** 40 + 5, -7], [0, 0], [2 ** 31 - 1, 2 ** 32 + 3]])
def test_uint32_hash_is_bit_identical_to_int64(seed):
    s = tf.constant(seed, tf.int64)
    ref = uniform_int64_reference([37, 129], s).numpy()
    np.testing.assert_array_equal(uniform([37, 129], s).numpy(), ref)
    xla = tf.function(lambda: uniform([37, 129], s), jit_compile=True)()
    np.testing.assert_array_equal(xla.numpy(), ref)


@pytest.mark.parametrize("jit", [False, True])
def test_segment_seeds_draw_each_pass_mask(jit):
    rows = [5, 10, 5]
    seeds = [tf.constant([3, i], tf.int64) for i in range(3)]
    x = tf.ones([sum(rows), 7])

    def merged():
        return stateless_dropout(x, 0.5, fold_seed(SegmentSeeds(seeds, rows), 2))

    def separate():
        return tf.concat([stateless_dropout(tf.ones([r, 7]), 0.5, fold_seed(s, 2))
                          for s, r in zip(seeds, rows)], 0)

    np.testing.assert_array_equal(tf.function(merged, jit_compile=jit)().numpy(),
                                  separate().numpy())


def _terms_and_grads(model, cfg, batch, merge, jit):
    fn = make_pretrain_loss(model, cfg, merge_passes=merge)
    variables = pretrain_variables(model)

    @tf.function(jit_compile=jit)
    def run(seed):
        with tf.GradientTape() as tape:
            loss, terms = fn(batch, seed)
        return dict(terms, loss=loss), tape.gradient(loss, variables)

    terms, grads = run(tf.constant([11, 5], tf.int64))
    return {k: v.numpy() for k, v in terms.items()}, [g.numpy() for g in grads]


@pytest.mark.parametrize("loss,simcse", [("contsoftmax", 1.0), ("contsoftmax", 0.0),
                                         ("contsoftmaxsym", 0.5), ("imgcontloss", 0.0),
                                         ("imgcontlossnolocneg", 0.0),
                                         ("imgcontlosssimcse", 0.1), ("l2regress", 0.0)])
@pytest.mark.parametrize("k", [1, 2])
def test_merged_passes_equal_one_call_per_pass(tiny_config, world, loss, simcse, k):
    cfg = tiny_config
    cfg.pretrain.loss, cfg.pretrain.simcse_weight, cfg.pretrain.num_neg_rand_loc = loss, simcse, k
    model = build_csp_model(cfg)
    batch = {"lon_lat": tf.constant(world["lon_lat"][:64]),
             "image_features": tf.constant(world["image_features"][:64])}
    t_ref, g_ref = _terms_and_grads(model, cfg.pretrain, batch, merge=False, jit=False)
    for jit in (False, True):
        t, g = _terms_and_grads(model, cfg.pretrain, batch, merge=True, jit=jit)
        assert t.keys() == t_ref.keys()
        for key in t_ref:
            np.testing.assert_allclose(t[key], t_ref[key], rtol=1e-5, atol=1e-6, err_msg=key)
        for a, b in zip(g, g_ref):
            # dW of the merged call sums the passes' rows in one GEMM (the reference: one GEMM
            # per pass, then AddN), so only the float summation order differs.
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_merged_embeddings_equal_separate_calls_without_dropout_change(tiny_config, world):
    """The merged call's per-segment outputs are the separate calls' outputs (same masks)."""
    from csp_tf.train.steps import merged_location_passes
    model = build_csp_model(tiny_config)
    x = tf.constant(world["lon_lat"][:32])
    xr = tf.constant(world["lon_lat"][32:64])
    seed = tf.constant([4, 9], tf.int64)
    e, r, e_pos = merged_location_passes(model, x, xr, True, seed, 1)
    emb = lambda pts, salt: model.location_embedding(pts, training=True, seed=fold_seed(seed, salt))
    np.testing.assert_allclose(e.numpy(), emb(x, 1).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r[0].numpy(), emb(xr, 3).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(e_pos.numpy(), emb(x, 4).numpy(), rtol=1e-6, atol=1e-6)
    # Different passes really do get different masks.
    assert not np.allclose(e.numpy(), e_pos.numpy())


def _one_step_weights(cfg, world, jit: bool, in_cluster: bool, strategy=None):
    from csp_tf.train.stages import make_optimizer
    from csp_tf.train.steps import TrainStep

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_csp_model(cfg)
        variables = pretrain_variables(model)
        opt = make_optimizer(1e-2, "float32")
        opt.build(variables)
    step = TrainStep(make_pretrain_loss(model, cfg.pretrain), opt, variables, strategy,
                     seed=0, stage_salt=1, jit_compile=jit)
    assert step.update_in_cluster == in_cluster
    batch = {"lon_lat": tf.constant(world["lon_lat"][:64]),
             "image_features": tf.constant(world["image_features"][:64])}
    losses = [float(step(batch, i)["loss"]) for i in range(3)]
    return losses, [v.numpy() for v in variables], int(opt.iterations.numpy())


def test_update_in_the_compiled_cluster_equals_the_update_outside(tiny_config, world):
    """With XLA under the default strategy Adam's update runs inside the step's compiled
    cluster; the trajectory is the update-outside one (XLA off) up to float rounding."""
    l_in, w_in, it_in = _one_step_weights(tiny_config, world, jit=True, in_cluster=True)
    l_out, w_out, it_out = _one_step_weights(tiny_config, world, jit=False, in_cluster=False)
    assert it_in == it_out == 3
    np.testing.assert_allclose(l_in, l_out, rtol=1e-5)
    for a, b in zip(w_in, w_out):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_update_stays_outside_under_a_distribution_strategy(tiny_config, world):
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    _, w, it = _one_step_weights(tiny_config, world, jit=True, in_cluster=False, strategy=one)
    assert it == 3 and all(np.all(np.isfinite(v)) for v in w)
