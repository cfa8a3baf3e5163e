"""Simple baselines every results table carries beside the paper's methods, fitted on the same
label subsets and splits (hyperparameters chosen on ``val``, scores on the evaluation split).

| key | what | score |
|---|---|---|
| ``knn_sphere`` | k-nearest neighbours on the unit sphere (k, weights chosen on val) | location |
| ``lr_sincos`` | multinomial logistic regression on multi-scale sin/cos of lon/lat | location |
| ``lr_image`` | multinomial logistic regression on standardised image features | image |
| ``lr_image_x_knn`` | P_lr_image · P_knn | fused |
| ``lr_image_x_lr_sincos`` | P_lr_image · P_lr_sincos | fused |

They are deterministic given the labeled subset (scikit-learn, lbfgs), so every seed of a ratio
gets the same numbers. No TensorFlow here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from csp_tf.coords import located_rows, unit_sphere

log = logging.getLogger("csp_tf")
Arrays = Mapping[str, np.ndarray]

KNN_KS = (1, 3, 5, 10, 20, 50)
LR_CS = (0.1, 1.0, 10.0)
LR_MAX_ITER = 500
SINCOS_SCALES = 16
SINCOS_MIN_DEG = 1.0  # finest wavelength of the sin/cos features, degrees


@dataclass(frozen=True)
class Baseline:
    name: str
    label: str
    score: str  # location | image | fused


BASELINES: Dict[str, Baseline] = {b.name: b for b in (
    Baseline("knn_sphere", "kNN on the sphere (location)", "location"),
    Baseline("lr_sincos", "LR on multi-scale sin/cos (location)", "location"),
    Baseline("lr_image", "LR on standardised image features", "image"),
    Baseline("lr_image_x_knn", "LR(image) × kNN", "fused"),
    Baseline("lr_image_x_lr_sincos", "LR(image) × LR(sin/cos)", "fused"),
)}


def multiscale_sincos(lon_lat: np.ndarray, scales: int = SINCOS_SCALES,
                      min_deg: float = SINCOS_MIN_DEG, max_deg: float = 360.0) -> np.ndarray:
    """sin/cos of lon and lat at ``scales`` geometric wavelengths in [min_deg, max_deg]."""
    ll = lon_lat.astype(np.float64)
    lams = min_deg * (max_deg / min_deg) ** (np.arange(scales) / max(scales - 1, 1))
    angles = ll[:, :, None] * (2 * np.pi / lams)[None, None, :]  # (N, 2, S)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).reshape(len(ll), -1)


def _full_proba(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    """predict_proba with a column for every class (classes absent from training get 0)."""
    p = model.predict_proba(x)
    out = np.zeros((len(x), num_classes), np.float64)
    out[:, model.classes_] = p
    return out


def _top1(probs: np.ndarray, labels: np.ndarray) -> float:
    true = probs[np.arange(len(labels)), labels]
    return float(100.0 * np.mean(np.sum(probs >= true[:, None], axis=1) == 1))


def _select(fit: Callable[[object], object], grid: Sequence[object], predict: Callable,
            val_labels: np.ndarray) -> Tuple[object, object, float]:
    best = None
    for h in grid:
        model = fit(h)
        acc = _top1(predict(model), val_labels)
        if best is None or acc > best[2]:
            best = (h, model, acc)
    return best  # type: ignore[return-value]


def _lr(c_value: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c_value, max_iter=LR_MAX_ITER, tol=1e-4)


def fit_knn_sphere(train: Arrays, val: Arrays, num_classes: int) -> Tuple[object, Dict[str, object]]:
    """kNN on the unit sphere, k and weights chosen on val; (model, what was chosen)."""
    from sklearn.neighbors import KNeighborsClassifier

    y, yv = np.asarray(train["label"]), np.asarray(val["label"])
    xs, xsv = unit_sphere(train["lon_lat"]), unit_sphere(val["lon_lat"])
    grid = [(k, w) for k in KNN_KS if k <= len(y) for w in ("uniform", "distance")]
    h, model, acc = _select(lambda hw: KNeighborsClassifier(hw[0], weights=hw[1]).fit(xs, y), grid,
                            lambda m: _full_proba(m, xsv, num_classes), yv)
    return model, {"k": h[0], "weights": h[1], "val_top1": acc}


def fit_lr_sincos(train: Arrays, val: Arrays, num_classes: int) -> Tuple[object, Dict[str, object]]:
    """Multinomial LR on multi-scale sin/cos of lon/lat, C chosen on val; (model, chosen)."""
    y, yv = np.asarray(train["label"]), np.asarray(val["label"])
    xf, xfv = multiscale_sincos(train["lon_lat"]), multiscale_sincos(val["lon_lat"])
    h, model, acc = _select(lambda cv: _lr(cv).fit(xf, y), LR_CS,
                            lambda m: _full_proba(m, xfv, num_classes), yv)
    return model, {"C": h, "val_top1": acc, "iterations": int(model.n_iter_.max())}


# The location-only baselines: name -> (fit on train with val selection, its input features).
LOCATION_BASELINES: Dict[str, Tuple[Callable, Callable[[np.ndarray], np.ndarray]]] = {
    "knn_sphere": (fit_knn_sphere, unit_sphere),
    "lr_sincos": (fit_lr_sincos, multiscale_sincos),
}


def location_baseline_proba(name: str, model, lon_lat: np.ndarray, num_classes: int) -> np.ndarray:
    """P(y|loc) of a fitted ``knn_sphere`` or ``lr_sincos`` model, a column per class."""
    return _full_proba(model, LOCATION_BASELINES[name][1](lon_lat), num_classes)


class BaselineSuite:
    """Fits the baselines for one labeled subset; ``scores(arrays)`` → probabilities per key."""

    def __init__(self, num_classes: int, feature_mean: Optional[np.ndarray] = None,
                 feature_std: Optional[np.ndarray] = None):
        self.num_classes = num_classes
        self.feature_mean, self.feature_std = feature_mean, feature_std
        self.chosen: Dict[str, object] = {}
        self.seconds: Dict[str, float] = {}

    def _image_x(self, feats: np.ndarray) -> np.ndarray:
        f = feats.astype(np.float64)
        if self.feature_mean is None:
            return f
        return (f - self.feature_mean) / np.maximum(self.feature_std, 1e-6)

    def fit(self, train: Arrays, val: Arrays) -> "BaselineSuite":
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # lbfgs stopping at LR_MAX_ITER is recorded in ``chosen`` (iterations), not printed.
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self._fit(train, val)

    def _fit(self, train: Arrays, val: Arrays) -> "BaselineSuite":
        c = self.num_classes
        y, yv = np.asarray(train["label"]), np.asarray(val["label"])
        t0 = time.time()
        self.knn, self.chosen["knn_sphere"] = fit_knn_sphere(train, val, c)
        self.seconds["knn_sphere"] = time.time() - t0
        t0 = time.time()
        self.lr_loc, self.chosen["lr_sincos"] = fit_lr_sincos(train, val, c)
        self.seconds["lr_sincos"] = time.time() - t0
        t0 = time.time()
        xi, xiv = self._image_x(train["image_features"]), self._image_x(val["image_features"])
        h, self.lr_img, acc = _select(lambda cv: _lr(cv).fit(xi, y), LR_CS,
                                      lambda m: _full_proba(m, xiv, c), yv)
        self.chosen["lr_image"] = {"C": h, "val_top1": acc, "iterations": int(self.lr_img.n_iter_.max())}
        self.seconds["lr_image"] = time.time() - t0
        log.info("baselines chosen on val: %s", self.chosen)
        return self

    def scores(self, arrays: Arrays) -> Dict[str, np.ndarray]:
        c = self.num_classes
        p_knn = location_baseline_proba("knn_sphere", self.knn, arrays["lon_lat"], c)
        p_loc = location_baseline_proba("lr_sincos", self.lr_loc, arrays["lon_lat"], c)
        p_img = _full_proba(self.lr_img, self._image_x(arrays["image_features"]), c)
        return {"knn_sphere": p_knn, "lr_sincos": p_loc, "lr_image": p_img,
                "lr_image_x_knn": p_img * p_knn, "lr_image_x_lr_sincos": p_img * p_loc}


def located_labeled(arrays: Arrays) -> Dict[str, np.ndarray]:
    """Rows with a label and both coordinates (what the baselines can score)."""
    return located_rows({k: arrays[k] for k in ("lon_lat", "image_features", "label")})
