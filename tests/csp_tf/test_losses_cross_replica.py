"""contsoftmax_loss with a cross-replica gather (pretrain.cross_replica_negatives): the mean of
the replicas' losses over their halves equals the loss of one replica on the whole batch."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.losses import contsoftmax_loss


@pytest.mark.parametrize("symmetric,simcse", [(False, 0.0), (False, 1.0), (True, 0.5)])
def test_gathered_halves_equal_the_whole_batch(symmetric, simcse):
    rng = np.random.default_rng(0)
    b, d = 12, 5
    e, v, e_pos = (tf.constant(rng.normal(size=(2 * b, d)), tf.float32) for _ in range(3))
    r = tf.constant(rng.normal(size=(2, 2 * b, d)), tf.float32)
    kw = dict(temp_inbatch=0.3, temp_simcse=0.7, simcse_weight=simcse, symmetric=symmetric)
    whole, terms = contsoftmax_loss(e, v, r, e_pos, **kw)

    def norm(t):
        return t / tf.norm(t, axis=-1, keepdims=True)

    halves = []
    for rep in range(2):
        sl = slice(rep * b, (rep + 1) * b)
        # The all-gather of the normalised [v, e (symmetric), e_pos (simcse)] of both replicas.
        everything = {"v": norm(v), "e": norm(e), "e_pos": norm(e_pos)}

        def gather(local, rep=rep):
            names = ["v"] + (["e"] if symmetric else []) + (["e_pos"] if simcse else [])
            assert len(local) == len(names)
            for name, t in zip(names, local):  # this replica's rows are its slice of the whole
                np.testing.assert_allclose(t.numpy(), everything[name][rep * b:(rep + 1) * b].numpy(),
                                           rtol=1e-6)
            return [everything[n] for n in names], tf.constant(rep * b)

        halves.append(contsoftmax_loss(e[sl], v[sl], r[:, sl], e_pos[sl], gather=gather, **kw))
    np.testing.assert_allclose(np.mean([h[0].numpy() for h in halves]), whole.numpy(), rtol=1e-5)
    keys = ["loss_inbatch"] + (["loss_simcse"] if simcse else [])
    for key in keys:
        np.testing.assert_allclose(np.mean([h[1][key].numpy() for h in halves]),
                                   terms[key].numpy(), rtol=1e-5, err_msg=key)
    # Without the gather each half only sees its own b candidates: a different (lower) loss.
    local = np.mean([contsoftmax_loss(e[s], v[s], r[:, s], e_pos[s], **kw)[1]["loss_inbatch"].numpy()
                     for s in (slice(0, b), slice(b, 2 * b))])
    assert local < terms["loss_inbatch"].numpy()


def test_cross_replica_negatives_needs_a_softmax_loss():
    from csp_tf.configs import ConfigError, get_preset

    cfg = get_preset("demo")
    cfg.pretrain.cross_replica_negatives, cfg.pretrain.loss = True, "imgcontloss"
    with pytest.raises(ConfigError, match="cross_replica_negatives"):
        cfg.validate()
