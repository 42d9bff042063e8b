"""log_model's reference side: the predictions profile and the calibration, in the package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import seaway
from seaway.errors import PackageIntegrityError, PackagingError, SeawayWarning
from seaway.packaging.reader import open_package, read_calibration, read_reference_predictions
from seaway.packaging.reference import (
    MAX_ROWS,
    class_index,
    output_columns,
    reference_outputs,
    sample_index,
)
from seaway.packaging.writer import save_model


def _data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    labels = np.where(frame["a"] + rng.normal(size=n) * 0.5 > 0, "yes", "no")
    return frame, labels


def test_classifier_package_has_predictions_profile_and_calibration(tmp_path: Path) -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    package = save_model(
        model, tmp_path / "pkg", sample_input=x[:5], reference_data=x, reference_labels=y
    )
    manifest = package.manifest
    assert manifest.reference_predictions == "reference_predictions.json"
    assert manifest.calibration == "calibration.json"
    assert {"reference_predictions.json", "calibration.json"} <= set(manifest.files)
    opened = open_package(package.path)  # checksummed like every other file
    profile = read_reference_predictions(opened)
    assert profile is not None
    assert list(profile.features) == ["predict", "predict_proba.no", "predict_proba.yes"]
    assert profile.n_rows == len(x)
    predicted = profile.feature("predict")
    assert predicted.kind == "categorical"
    assert sum(predicted.top.values()) == len(x)  # type: ignore[union-attr]
    calibration = read_calibration(opened)
    assert calibration is not None
    assert calibration.classes == ("no", "yes") and calibration.n_rows == len(x)
    assert calibration.source == "reference"


def test_predictions_go_through_the_served_signature(tmp_path: Path) -> None:
    """The reference rows are coerced as requests are: int columns of a float model work."""
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    ints = (x * 10).round().astype("int64")
    package = save_model(model, tmp_path / "pkg", sample_input=x[:5], reference_data=ints)
    assert package.manifest.reference_predictions is not None
    assert package.manifest.calibration is None  # no labels, no calibration


def test_tampered_calibration_is_refused(tmp_path: Path) -> None:
    x, y = _data()
    package = save_model(
        LogisticRegression().fit(x, y),
        tmp_path / "pkg",
        sample_input=x[:5],
        reference_data=x,
        reference_labels=y,
    )
    path = package.path / "calibration.json"
    data = json.loads(path.read_text())
    data["n_rows"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(PackageIntegrityError, match="calibration.json"):
        open_package(package.path)


def test_regressor_gets_a_predictions_profile_only(tmp_path: Path) -> None:
    x, _ = _data()
    target = x["a"] * 2 + 1
    package = save_model(
        LinearRegression().fit(x, target),
        tmp_path / "pkg",
        sample_input=x[:5],
        reference_data=x,
        reference_labels=target,
    )
    profile = read_reference_predictions(open_package(package.path))
    assert profile is not None and list(profile.features) == ["predict"]
    assert profile.feature("predict").kind == "numeric"
    assert package.manifest.calibration is None


def test_without_sample_input_the_live_predictor_is_used(tmp_path: Path) -> None:
    x, y = _data()
    package = save_model(
        LogisticRegression().fit(x.to_numpy(), y),
        tmp_path / "pkg",
        reference_data=x.to_numpy(),
        reference_labels=y,
    )
    assert package.manifest.calibration is not None


def test_a_model_that_cannot_predict_on_its_reference_data_warns(tmp_path: Path) -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    # a training frame still holding its target: the signature takes the model's columns
    kept = save_model(model, tmp_path / "a", sample_input=x[:5], reference_data=x.assign(t=y))
    assert kept.manifest.reference_predictions is not None
    with pytest.warns(SeawayWarning, match="cannot predict on reference_data"):
        package = save_model(model, tmp_path / "pkg", sample_input=x[:5], reference_data=x[["a"]])
    assert package.manifest.reference_profile is not None  # the input profile is kept
    assert package.manifest.reference_predictions is None


def test_bad_reference_labels(tmp_path: Path) -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    with pytest.raises(PackagingError, match="pass both"):
        save_model(model, tmp_path / "a", sample_input=x[:5], reference_labels=y)
    with pytest.raises(PackagingError, match="599 labels but reference_data has 600"):
        save_model(
            model, tmp_path / "b", sample_input=x[:5], reference_data=x, reference_labels=y[1:]
        )
    with pytest.raises(PackagingError, match="none of reference_labels"):
        save_model(
            model,
            tmp_path / "c",
            sample_input=x[:5],
            reference_data=x,
            reference_labels=np.full(len(x), "maybe"),
        )


def test_log_model_takes_reference_labels(tmp_path: Path) -> None:
    x, y = _data()
    version = seaway.log_model(
        LogisticRegression().fit(x, y),
        "clf",
        sample_input=x[:5],
        reference_data=x,
        reference_labels=y,
    )
    assert version.manifest.calibration == "calibration.json"


class _Counting:
    """A predictor that records how many rows it was asked about."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.rows = 0

    def predict(self, data: np.ndarray) -> np.ndarray:
        self.rows += len(data)
        return (data[:, 0] > 0).astype(int)

    def predict_proba(self, data: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-data[:, 0]))
        return np.column_stack([1 - p, p])


def test_at_most_max_rows_are_predicted_on_a_seeded_sample() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(MAX_ROWS + 5000, 2))
    labels = (data[:, 0] > 0).astype(int)
    predictor = _Counting()
    outputs = reference_outputs(predictor, data, labels, None, [0, 1])
    assert outputs is not None and predictor.rows == MAX_ROWS
    assert outputs.predictions.n_rows == MAX_ROWS
    assert outputs.calibration is not None and outputs.calibration.n_rows == MAX_ROWS
    assert np.array_equal(sample_index(MAX_ROWS + 5000), sample_index(MAX_ROWS + 5000))


def test_output_columns_and_class_index() -> None:
    proba = np.array([[0.2, 0.8]])
    assert [c for c, _ in output_columns("predict_proba", proba, [0, 1])] == [
        "predict_proba.0",
        "predict_proba.1",
    ]
    assert [c for c, _ in output_columns("predict_proba", proba, None)] == [
        "predict_proba.0",
        "predict_proba.1",
    ]
    assert [c for c, _ in output_columns("predict", np.array([1]), None)] == ["predict"]
    assert class_index([1, 1.0, "1", True, "x", 0], [0, 1]).tolist() == [1, 1, 1, 1, -1, 0]
    assert class_index(["b", "a", 1], ["a", "b"]).tolist() == [1, 0, -1]


def test_integer_class_labels_are_categories_and_outputs_get_no_multivariate_check(
    tmp_path: Path,
) -> None:
    x, y = _data()
    codes = (np.asarray(y) == "yes").astype(np.int64)  # labels 0 and 1: numbers, yet classes
    model = LogisticRegression().fit(x, codes)
    package = save_model(model, tmp_path / "pkg", sample_input=x[:5], reference_data=x)
    profile = read_reference_predictions(open_package(package.path))
    assert profile is not None
    assert profile.feature("predict").kind == "categorical"  # chi-squared, not KS on 0/1
    assert profile.multivariate is None  # probabilities sum to 1: nothing to learn jointly
