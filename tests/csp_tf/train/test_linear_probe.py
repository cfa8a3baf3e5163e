"""The image probe: fitted to convergence like scikit-learn's LogisticRegression, L2 on val."""

import numpy as np
import pytest

from csp_tf.configs import get_preset
from csp_tf.models import build_csp_model
from csp_tf.train.linear_probe import fit_linear_probe


def _data(rng, n, f=12, c=5, scale=100.0):
    centers = rng.normal(0, 1, (c, f))
    y = rng.integers(0, c, n)
    x = centers[y] + rng.normal(0, 1.2, (n, f))
    return (x * scale + 50.0).astype(np.float32), y  # badly scaled, offset features


def _model(f, c, standardize=True):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = c, f
    cfg.data.standardize_features = standardize
    return build_csp_model(cfg)


def test_probe_matches_sklearn_on_standardised_features():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    x, y = _data(rng, 600)
    xv, yv = _data(np.random.default_rng(0), 600)  # same centers (same seed), new draws below
    xv, yv = x[300:], y[300:]
    x, y = x[:300], y[:300]
    mean, std = np.concatenate([x, xv]).mean(0), np.concatenate([x, xv]).std(0)
    m = _model(12, 5)
    m.set_feature_stats(mean, std)
    fit = fit_linear_probe(m, x, y, l2_grid=[1e-4, 1e-2], steps=300, val_features=xv, val_labels=yv)
    ours = float(np.mean(np.argmax(m.image_logits(xv).numpy(), 1) == yv) * 100)
    sk = LogisticRegression(max_iter=1000).fit((x - mean) / std, y)
    theirs = float(np.mean(sk.predict((xv - mean) / std) == yv) * 100)
    assert fit.val_top1 == pytest.approx(ours)
    assert ours >= theirs - 1.0, (ours, theirs)
    assert [g["l2"] for g in fit.grid] == [1e-4, 1e-2]


def test_without_validation_only_the_first_l2_is_fitted():
    rng = np.random.default_rng(1)
    x, y = _data(rng, 100)
    m = _model(12, 5)
    fit = fit_linear_probe(m, x, y, l2_grid=[1e-3, 1e-1], steps=20)
    assert fit.l2 == 1e-3 and len(fit.grid) == 1 and np.isnan(fit.val_top1)


def test_standardisation_lives_in_the_model_and_survives_keras_round_trip(tmp_path):
    import keras
    m = _model(12, 5)
    mean, std = np.arange(12, dtype=np.float32), np.full(12, 2.0, np.float32)
    m.set_feature_stats(mean, std)
    f = np.ones((3, 12), np.float32)
    np.testing.assert_allclose(m.prepare_features(f).numpy(), (f - mean) / std, rtol=1e-6)
    m.save(str(tmp_path / "m.keras"))
    back = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(back.prepare_features(f).numpy(), (f - mean) / std, rtol=1e-6)
    with pytest.raises(ValueError, match="width 3"):
        m.set_feature_stats(np.zeros(3), np.ones(3))


def test_a_sharp_boundary_gets_more_rounds_until_converged():
    # Bands of one feature (like the altitude-band control): one round of a short schedule stops
    # far from the optimum; rounds continue while the objective still falls by > 1 %.
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (3000, 6)).astype(np.float32)
    y = np.searchsorted([-1.0, -0.3, 0.3, 1.0], x[:, 0])
    xv = rng.normal(0, 1, (2000, 6)).astype(np.float32)
    yv = np.searchsorted([-1.0, -0.3, 0.3, 1.0], xv[:, 0])
    scores = {}
    for rounds in (1, 6):
        m = _model(6, 5, standardize=False)
        fit = fit_linear_probe(m, x, y, l2_grid=[0.0], steps=60, lr=0.2, val_features=xv,
                               val_labels=yv, max_rounds=rounds)
        scores[rounds] = (fit.val_top1, fit.grid[0]["rounds"], fit.grid[0]["train_loss"])
    assert scores[1][1] == 1 and scores[6][1] > 1
    assert scores[6][2] < 0.9 * scores[1][2]
    assert scores[6][0] > scores[1][0] + 2.0, scores


def test_probe_rounds_must_be_positive():
    m = _model(12, 5)
    x, y = _data(np.random.default_rng(2), 50)
    with pytest.raises(ValueError, match="max_rounds"):
        fit_linear_probe(m, x, y, l2_grid=[1e-3], steps=5, max_rounds=0)
