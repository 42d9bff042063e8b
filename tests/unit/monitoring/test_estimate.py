"""CBPE: estimated accuracy follows the realised one under covariate shift when calibration holds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from seaway.monitoring.estimate import (
    MIN_CALIBRATION_ROWS,
    calibration_from_feedback,
    estimate_performance,
    expected_confusion,
    metrics_from_confusion,
)
from seaway.monitoring.metrics import classification_metrics
from seaway.packaging.calibration import fit_calibration


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _draw(rng: np.random.Generator, n: int, scale: float, weights: np.ndarray) -> tuple:
    """Inputs spread by ``scale``; labels from a fixed softmax(x @ weights): the concept never
    moves, only the inputs do."""
    x = rng.normal(size=(n, weights.shape[0])) * scale + 0.3
    p = _softmax(x @ weights)
    y = np.array([rng.choice(p.shape[1], p=row) for row in p])
    return x, y


@pytest.mark.parametrize("k", [2, 3])
def test_estimate_is_within_a_few_points_of_realised_accuracy_under_covariate_shift(k: int) -> None:
    rng = np.random.default_rng(k)
    weights = rng.normal(size=(2, k)) * 2.0
    x_ref, y_ref = _draw(rng, 20_000, 1.5, weights)
    model = LogisticRegression().fit(x_ref, y_ref)
    classes = list(range(k))
    calibration = fit_calibration(model.predict_proba(x_ref), y_ref, classes)
    realised_all = []
    for scale in (1.5, 1.0, 0.6, 0.3):
        # the inputs crowd where the classes overlap: accuracy drops
        x, y = _draw(rng, 20_000, scale, weights)
        proba = model.predict_proba(x)
        predicted = model.predict(x)
        realised = classification_metrics(
            y.astype(str).astype(object), predicted.astype(str).astype(object),
            [str(c) for c in classes], proba,
        )  # fmt: skip
        estimated = estimate_performance(proba, predicted, calibration)
        for name in ("accuracy", "precision", "recall", "f1"):
            assert estimated[name].value == pytest.approx(realised[name].value, abs=0.03), (
                scale,
                name,
            )
        realised_all.append(realised["accuracy"].value)
    assert realised_all[0] - realised_all[-1] > 0.1  # the shift did hurt


def test_expected_confusion_of_true_labels_gives_the_realised_metrics() -> None:
    rng = np.random.default_rng(7)
    classes = ["a", "b", "c"]
    truth = rng.integers(0, 3, 500)
    pred = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500))
    onehot = np.eye(3)[truth]
    values = metrics_from_confusion(expected_confusion(onehot, pred))
    names = np.array(classes, dtype=object)
    realised = classification_metrics(names[truth], names[pred], classes)
    for name, value in values.items():
        assert value == pytest.approx(realised[name].value)


def test_estimate_without_calibration_or_predictions_takes_the_argmax() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [np.nan, np.nan]])
    estimated = estimate_performance(proba, None)
    assert estimated["accuracy"].value == pytest.approx(0.85)
    assert "uncalibrated" in (estimated["accuracy"].reason or "")
    unknown = estimate_performance(proba, [-1, 1, 0])
    assert unknown["accuracy"].value == pytest.approx(0.85)


def test_estimate_refuses_what_it_cannot_use() -> None:
    assert estimate_performance(np.ones((3, 1)), None)["accuracy"].value is None
    none = estimate_performance(np.full((2, 2), np.nan), None)["f1"]
    assert none.value is None and "no rows" in (none.reason or "")


def test_calibration_from_feedback_needs_enough_rows() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(MIN_CALIBRATION_ROWS)
    proba = np.column_stack([1 - p, p])
    labels = (rng.random(p.size) < p).astype(int)
    labels[0] = -1  # an unknown label is not usable: one row short
    assert calibration_from_feedback(proba, labels, [0, 1]) is None
    labels[0] = 1
    fitted = calibration_from_feedback(proba, labels, [0, 1])
    assert fitted is not None and fitted.source == "feedback"
    assert fitted.n_rows == MIN_CALIBRATION_ROWS


def test_calibration_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(11)
    weights = rng.normal(size=(2, 2)) * 2.0
    x_ref, y_ref = _draw(rng, 20_000, 1.5, weights)
    model = LogisticRegression().fit(x_ref, y_ref)

    def overconfident(x: np.ndarray) -> np.ndarray:
        sharp = model.predict_proba(x) ** 4  # same argmax, far too sure of itself
        return sharp / sharp.sum(axis=1, keepdims=True)

    calibration = fit_calibration(overconfident(x_ref), y_ref, [0, 1])
    x, y = _draw(rng, 20_000, 0.6, weights)
    realised = float(np.mean(model.predict(x) == y))
    raw = estimate_performance(overconfident(x), model.predict(x))["accuracy"].value
    calibrated = estimate_performance(overconfident(x), model.predict(x), calibration)
    assert raw is not None and raw - realised > 0.05
    assert calibrated["accuracy"].value == pytest.approx(realised, abs=0.02)
