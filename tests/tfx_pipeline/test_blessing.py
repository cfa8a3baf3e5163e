"""The push decision (tfx_pipeline.blessing): the Evaluator's verdict AND no worse than a kNN
fitted on the same training labels, on the same rows; every refusal says why."""

import numpy as np

from tfx_pipeline.blessing import decide, knn_top1


def _rows(n, seed):
    """Four classes in four lon/lat quadrants: a kNN on the sphere gets them (nearly) all."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 4, n)
    centers = np.array([[-100, 40], [60, 30], [-60, -20], [120, -30]], np.float32)[label]
    return {"lon_lat": (centers + rng.normal(scale=5, size=(n, 2))).astype(np.float32),
            "image_features": np.zeros((n, 2), np.float32), "label": label.astype(np.int64)}


def test_a_candidate_below_the_knn_is_not_blessed_and_says_why():
    knn = knn_top1(_rows(200, 0), _rows(100, 1), 4)
    assert knn["top1"] > 0.95
    worse = decide(True, [], 0.60, knn, 0.0, 100)
    assert not worse.blessed
    assert worse.reasons == [
        f"fused top-1 60.00 % is below the required {100 * knn['top1']:.2f} %: the kNN "
        f"baseline's {100 * knn['top1']:.2f} % (knn_sphere k={knn['k']}, {knn['weights']}) on "
        "the same 100 val rows, minus the tolerance 0.00 points"]
    assert decide(True, [], knn["top1"], knn, 0.0, 100).blessed  # level with it: pushed
    assert decide(True, [], 0.60, knn, 0.5, 100).blessed  # within the configured tolerance


def test_the_evaluators_refusal_is_kept_with_its_reasons():
    knn = knn_top1(_rows(200, 0), _rows(100, 1), 4)
    failure = "Evaluator: top1_accuracy = 0.2000 fails its threshold (lower bound 0.2500)"
    d = decide(False, [failure], 1.0, knn, 0.0, 100)  # level with the kNN
    assert not d.blessed and d.reasons == [failure]
    assert d.summary() == "not blessed: " + failure


def test_rows_without_a_location_count_as_the_majority_label():
    train, val = _rows(200, 0), _rows(100, 1)
    val["lon_lat"][:10] = np.nan
    majority = int(np.bincount(train["label"]).argmax())
    knn = knn_top1(train, val, 4)
    located = knn_top1(train, {k: v[10:] for k, v in val.items()}, 4)["top1"] * 90
    assert knn["top1"] == (round(located) + int(np.sum(val["label"][:10] == majority))) / 100
