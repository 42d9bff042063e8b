"""Feedback metrics equal scikit-learn's on the same labels, and say why when undefined."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from seaway.monitoring.metrics import (
    average_ranks,
    classification_metrics,
    label_index,
    regression_metrics,
)


def _proba(rng: np.random.Generator, n: int, k: int, ties: bool) -> np.ndarray:
    raw = rng.random((n, k)) ** 2
    if ties:
        raw = np.round(raw, 1) + 0.01
    return raw / raw.sum(axis=1, keepdims=True)


def _sklearn(truth, pred, classes, proba):
    binary = len(classes) == 2
    kw = {"pos_label": classes[1]} if binary else {"average": "macro"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "accuracy": skm.accuracy_score(truth, pred),
            "precision": skm.precision_score(truth, pred, **kw),
            "recall": skm.recall_score(truth, pred, **kw),
            "f1": skm.f1_score(truth, pred, **kw),
            "log_loss": skm.log_loss(truth, proba, labels=classes),
        }
        if len(set(truth)) == len(classes):
            if binary:
                out["roc_auc"] = skm.roc_auc_score(truth == classes[1], proba[:, 1])
            else:
                out["roc_auc"] = skm.roc_auc_score(
                    truth, proba, multi_class="ovr", average="macro", labels=classes
                )
    return out


@pytest.mark.parametrize("k", [2, 3, 5])
def test_classifier_metrics_equal_sklearn_on_random_cases(k: int) -> None:
    rng = np.random.default_rng(k)
    classes = [f"c{j}" for j in range(k)]
    checked_auc = 0
    for case in range(60):
        n = int(rng.integers(1, 400))
        proba = _proba(rng, n, k, ties=case % 2 == 0)
        truth = np.array(classes, dtype=object)[rng.integers(0, k, n)]
        # predictions: mostly the argmax, sometimes random (a model whose predict is not argmax)
        pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
        flip = rng.random(n) < 0.2
        pred[flip] = np.array(classes, dtype=object)[rng.integers(0, k, int(flip.sum()))]
        ours = classification_metrics(truth, pred, classes, proba)
        theirs = _sklearn(truth, pred, classes, proba)
        for name, value in theirs.items():
            assert ours[name].value == pytest.approx(value, abs=1e-12), (name, case)
        if "roc_auc" in theirs:
            checked_auc += 1
    assert checked_auc > 30


def test_binary_positive_class_is_the_second_class() -> None:
    classes = ["no", "yes"]
    truth = np.array(["yes", "yes", "no", "no"], dtype=object)
    pred = np.array(["yes", "no", "no", "no"], dtype=object)
    ours = classification_metrics(truth, pred, classes)
    assert ours["precision"].value == 1.0
    assert ours["recall"].value == 0.5
    assert ours["recall"].value == skm.recall_score(truth, pred, pos_label="yes")


def test_one_class_only_gives_no_auc_with_a_reason() -> None:
    classes = ["0", "1"]
    truth = np.array(["1", "1", "1"], dtype=object)
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    ours = classification_metrics(truth, np.array(["1", "0", "1"], dtype=object), classes, proba)
    assert ours["roc_auc"].value is None
    assert "one class" in (ours["roc_auc"].reason or "")
    assert ours["log_loss"].value == pytest.approx(skm.log_loss(truth, proba, labels=classes))
    assert ours["accuracy"].value == pytest.approx(2 / 3)


def test_multiclass_auc_over_the_classes_present_says_so() -> None:
    classes = ["a", "b", "c"]
    truth = np.array(["a", "b", "a", "b"], dtype=object)
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    auc = classification_metrics(truth, truth, classes, proba)["roc_auc"]
    assert auc.value is not None and "2 of 3" in (auc.reason or "")


def test_unknown_labels_count_as_wrong_and_leave_probability_metrics() -> None:
    classes = ["0", "1"]
    truth = np.array(["0", "1", "7", "1"], dtype=object)
    pred = np.array(["0", "1", "1", "1"], dtype=object)
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])
    ours = classification_metrics(truth, pred, classes, proba)
    assert ours["accuracy"].value == 0.75
    expected = skm.log_loss(truth[[0, 1, 3]], proba[[0, 1, 3]], labels=classes)
    assert ours["log_loss"].value == pytest.approx(expected)
    assert "1 rows" in (ours["log_loss"].reason or "")


def test_no_rows_and_no_probabilities() -> None:
    empty = classification_metrics(np.array([], dtype=object), np.array([], dtype=object), ["a"])
    assert all(m.value is None and m.reason for m in empty.values())
    plain = classification_metrics(np.array(["a"]), np.array(["a"]), ["a", "b"])
    assert plain["accuracy"].value == 1.0 and plain["roc_auc"].value is None


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(2, 300))
        truth = rng.normal(size=n) * rng.random() * 10
        pred = truth + rng.normal(size=n)
        ours = regression_metrics(truth, pred)
        assert ours["mae"].value == pytest.approx(skm.mean_absolute_error(truth, pred), rel=1e-12)
        assert ours["rmse"].value == pytest.approx(
            skm.root_mean_squared_error(truth, pred), rel=1e-12
        )
        assert ours["r2"].value == pytest.approx(skm.r2_score(truth, pred), rel=1e-9, abs=1e-12)


def test_regression_edge_cases() -> None:
    one = regression_metrics([1.0], [2.0])
    assert one["r2"].value is None and "two rows" in (one["r2"].reason or "")
    assert one["mae"].value == 1.0
    constant = regression_metrics([3.0, 3.0], [3.0, 3.0])
    assert constant["r2"].value == skm.r2_score([3.0, 3.0], [3.0, 3.0])
    missed = regression_metrics([3.0, 3.0], [3.0, 4.0])
    assert missed["r2"].value == skm.r2_score([3.0, 3.0], [3.0, 4.0])
    partly = regression_metrics([1.0, np.nan, 3.0], [1.0, 2.0, 2.0])
    assert partly["mae"].value == 0.5 and "1 rows" in (partly["mae"].reason or "")
    nothing = regression_metrics([np.nan], [1.0])
    assert nothing["rmse"].value is None


def test_average_ranks_match_scipy() -> None:
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=500), 1)
    assert np.array_equal(average_ranks(values), rankdata(values))


def test_label_index() -> None:
    assert label_index(np.array(["b", "x", "a"], dtype=object), ["a", "b"]).tolist() == [1, -1, 0]


def test_rows_without_probabilities_leave_probability_metrics_only() -> None:
    classes = ["0", "1"]
    truth = np.array(["0", "1", "1", "0"], dtype=object)
    proba = np.array([[0.8, 0.2], [np.nan, np.nan], [0.3, 0.7], [0.6, 0.4]])
    ours = classification_metrics(truth, truth, classes, proba)
    assert ours["accuracy"].value == 1.0
    keep = [0, 2, 3]
    assert ours["log_loss"].value == pytest.approx(
        skm.log_loss(truth[keep], proba[keep], labels=classes)
    )
    assert "1 rows without logged probabilities" in (ours["roc_auc"].reason or "")
