"""Losses against small cases computed by hand (numpy), gradients and invariances."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf import losses


def _norm(u):
    return u / np.linalg.norm(u, axis=-1, keepdims=True)


def _ce_diag(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(np.diag(logp))


@pytest.fixture
def emb():
    rng = np.random.default_rng(0)
    b, d, k = 4, 3, 2
    return dict(e=rng.normal(size=(b, d)), v=rng.normal(size=(b, d)), r=rng.normal(size=(k, b, d)),
                p=rng.normal(size=(b, d)))


def test_contsoftmax_matches_hand_computation(emb):
    e, v, r, p = (_norm(emb[k]) for k in "evrp")
    t1, t2, t3, wr, ws = 20.0, 1.0, 0.5, 0.7, 0.3
    l_in = _ce_diag(e @ v.T / t1)
    pos = (e * v).sum(-1) / t2
    neg = (r * v[None]).sum(-1) / t2  # (K, B)
    allv = np.concatenate([pos[None], neg], 0)
    l_neg = np.mean(np.log(np.exp(allv).sum(0)) - pos)
    l_sim = _ce_diag(e @ p.T / t3)
    want = l_in + wr * l_neg + ws * l_sim
    got, terms = losses.contsoftmax_loss(
        *(tf.constant(emb[k], tf.float32) for k in "evrp"), temp_inbatch=t1, temp_negloc=t2,
        temp_simcse=t3, rand_sample_weight=wr, simcse_weight=ws)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss_inbatch"]), l_in, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss_negloc"]), l_neg, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss_simcse"]), l_sim, rtol=1e-5)


def test_divide_quirk_vs_multiply_fix(emb):
    """τ=20 divides (flattens, logits in [-0.05, 0.05]); 'multiply' is CLIP-style cos·τ."""
    args = [tf.constant(emb[k], tf.float32) for k in "evrp"]
    flat, t_flat = losses.contsoftmax_loss(*args, temp_inbatch=20.0)
    sharp, t_sharp = losses.contsoftmax_loss(*args, temp_inbatch=20.0, temperature_mode="multiply")
    b = emb["e"].shape[0]
    # Divided by 20 the in-batch softmax is nearly uniform: CE ≈ log B.
    assert abs(float(t_flat["loss_inbatch"]) - np.log(b)) < 0.05
    e, v = _norm(emb["e"]), _norm(emb["v"])
    np.testing.assert_allclose(float(t_sharp["loss_inbatch"]), _ce_diag(e @ v.T * 20.0), rtol=1e-5)


def test_symmetric_adds_image_to_location_direction(emb):
    args = [tf.constant(emb[k], tf.float32) for k in "evrp"]
    _, one = losses.contsoftmax_loss(*args)
    _, sym = losses.contsoftmax_loss(*args, symmetric=True)
    e, v = _norm(emb["e"]), _norm(emb["v"])
    np.testing.assert_allclose(float(sym["loss_inbatch"]), _ce_diag(e @ v.T) + _ce_diag(v @ e.T), rtol=1e-5)
    assert float(sym["loss_inbatch"]) > float(one["loss_inbatch"])


def test_contsoftmax_invariant_to_embedding_scale(emb):
    a = [tf.constant(emb[k], tf.float32) for k in "evrp"]
    b = [x * 7.5 for x in a]
    np.testing.assert_allclose(float(losses.contsoftmax_loss(*a, simcse_weight=1.0)[0]),
                               float(losses.contsoftmax_loss(*b, simcse_weight=1.0)[0]), rtol=1e-5)


def test_contsoftmax_invariant_to_joint_permutation(emb):
    perm = np.array([2, 0, 3, 1])
    a = [tf.constant(emb[k], tf.float32) for k in "evrp"]
    b = [tf.constant(emb["e"][perm], tf.float32), tf.constant(emb["v"][perm], tf.float32),
         tf.constant(emb["r"][:, perm], tf.float32), tf.constant(emb["p"][perm], tf.float32)]
    np.testing.assert_allclose(float(losses.contsoftmax_loss(*a, simcse_weight=1.0)[0]),
                               float(losses.contsoftmax_loss(*b, simcse_weight=1.0)[0]), rtol=1e-5)


def test_imgcontloss_hand_computed(emb):
    e, v, r, p = (_norm(emb[k]) for k in "evrp")
    sig = lambda x: 1 / (1 + np.exp(-x))
    bce = lambda q: -np.log(q + 1e-5)

    def binary(s):
        b = s.shape[0]
        off = ~np.eye(b, dtype=bool)
        return np.mean(bce(sig(np.diag(s))) + (bce(1 - sig(s)) * off).sum(1) / (b - 1))

    l_img = binary(e @ v.T)
    l_rand = np.mean(bce(1 - sig((r * v[None]).sum(-1))))
    l_ss = binary(e @ p.T)
    t = {k: tf.constant(emb[k], tf.float32) for k in "evrp"}
    got, _ = losses.imgcontloss_loss(t["e"], t["v"], t["r"], t["p"], rand_sample_weight=0.5, simcse_weight=2.0)
    np.testing.assert_allclose(float(got), l_img + 0.5 * l_rand + 2.0 * l_ss, rtol=1e-5)
    got_noloc, _ = losses.imgcontloss_loss(t["e"], t["v"])
    np.testing.assert_allclose(float(got_noloc), l_img, rtol=1e-5)


def test_l2regress_is_plain_mse():
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    got, _ = losses.l2regress_loss(tf.constant(a, tf.float32), tf.constant(b, tf.float32))
    assert float(got) == pytest.approx(np.mean((a - b) ** 2))


def test_full_loss_hand_computed():
    p = np.array([[0.9, 0.2, 0.1], [0.3, 0.6, 0.5]])
    pr = np.array([[0.1, 0.2, 0.3], [0.05, 0.5, 0.9]])
    y = np.array([0, 2])
    c = 3
    bce = lambda q: -np.log(q + 1e-5)
    pos = np.array([[c * bce(0.9), bce(0.8), bce(0.9)], [bce(0.7), bce(0.4), c * bce(0.5)]])
    want = pos.mean() + 0.5 * bce(1 - pr).mean()
    got, terms = losses.full_loss(tf.constant(p, tf.float32), tf.constant(y), tf.constant(pr, tf.float32),
                                  rand_sample_weight=0.5)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_gradients_finite_even_for_zero_embedding(emb):
    e = tf.Variable(np.vstack([np.zeros((1, 3)), emb["e"][1:]]), dtype=tf.float32)
    v = tf.Variable(emb["v"], dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss, _ = losses.contsoftmax_loss(e, v, tf.constant(emb["r"], tf.float32), e, simcse_weight=1.0)
    grads = tape.gradient(loss, [e, v])
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_losses_compile_with_xla(emb):
    args = [tf.constant(emb[k], tf.float32) for k in "evrp"]
    eager = losses.contsoftmax_loss(*args, temp_inbatch=20.0, simcse_weight=1.0)[0]
    xla = tf.function(lambda *a: losses.contsoftmax_loss(*a, temp_inbatch=20.0, simcse_weight=1.0)[0],
                      jit_compile=True)(*args)
    np.testing.assert_allclose(float(eager), float(xla), rtol=1e-5)
