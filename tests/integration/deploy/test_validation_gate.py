"""``seaway.deploy.validate``: a registered version scored on held-out data against thresholds
(issue 12, item 6): the figures equal scikit-learn's, a version that misses a threshold is
refused with the figures, and requests that cannot be measured are refused naming the field."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score, roc_auc_score

from seaway.deploy.validate import LATENCY_ROWS, validate
from seaway.errors import InvalidInputError, ValidationFailedError
from seaway.registry import Registry


def _ticking(steps_ms: list[float]) -> itertools.chain[float]:
    """A clock whose successive start/stop readings make the given latencies (ms)."""
    readings = []
    now = 0.0
    for step in steps_ms:
        readings += [now, now + step / 1000.0]
        now += 1.0
    return itertools.chain(readings)


def test_a_good_version_passes_with_figures_equal_to_scikit_learns(
    fraud: Registry, holdout: Path
) -> None:
    frame = pd.read_parquet(holdout)
    features, truth = frame.drop(columns=["label"]), frame["label"]
    model = fraud.resolve("models:/fraud/1")
    report = validate(
        fraud, "models:/fraud/1", str(holdout), target="label", minimum={"accuracy": 0.9}
    )
    assert report.passed and report.failures == []
    assert report.uri == model.uri and report.rows == 200 and report.task == "classifier"

    from seaway.api import load_model

    loaded = load_model("models:/fraud/1", registry=fraud)
    predicted = loaded.predict(features)
    proba = loaded.predict_proba(features)[:, 1]
    assert report.figures["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert report.figures["f1"] == pytest.approx(f1_score(truth, predicted))
    assert report.figures["roc_auc"] == pytest.approx(roc_auc_score(truth, proba))
    assert report.figures["p50_ms"] is not None and report.figures["p99_ms"] is not None
    report.raise_if_failed()  # nothing to raise


def test_a_bad_version_is_refused_with_its_figures(fraud: Registry, holdout: Path) -> None:
    report = validate(
        fraud, "fraud/3", str(holdout), target="label", minimum={"accuracy": 0.9, "f1": 0.5}
    )
    assert not report.passed
    accuracy = report.figures["accuracy"]
    assert accuracy is not None and accuracy < 0.7
    assert report.failures == [
        f"accuracy {accuracy:.4g} is below the minimum 0.9",
        "f1 0 is below the minimum 0.5",
    ]
    with pytest.raises(ValidationFailedError) as caught:
        report.raise_if_failed()
    message = str(caught.value)
    assert message.startswith(f"models:/fraud/3 failed validation on {holdout} (200 rows): ")
    assert f"accuracy {accuracy:.4g} is below the minimum 0.9" in message
    assert isinstance(caught.value, InvalidInputError)


def test_an_alias_names_the_version_it_points_at(fraud: Registry, holdout: Path) -> None:
    report = validate(fraud, "fraud@production", str(holdout), target="label")
    assert report.uri == "models:/fraud/1"


def test_latency_is_single_row_predicts_over_at_most_200_rows(
    fraud: Registry, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, target = tabular
    big = pd.concat([frame, frame]).assign(label=np.concatenate([target, target]))
    path = tmp_path / "big.jsonl"
    big.to_json(path, orient="records", lines=True)
    steps = [float(i % 100) for i in range(LATENCY_ROWS)]
    steps[7] = 500.0  # one slow call: the p99
    clock = _ticking(steps)
    report = validate(
        fraud,
        "fraud/1",
        str(path),
        target="label",
        maximum={"p50_ms": 100, "p99_ms": 20},
        clock=lambda: next(clock),
    )
    assert report.rows == 400
    assert next(clock, None) is None  # exactly LATENCY_ROWS rows were timed
    p50, p99 = np.percentile(steps, [50, 99])
    assert report.figures["p50_ms"] == pytest.approx(p50)
    assert report.figures["p99_ms"] == pytest.approx(p99)
    assert report.failures == [f"p99_ms {p99:.4g} is above the maximum 20"]


def test_latency_alone_needs_no_target(fraud: Registry, holdout: Path) -> None:
    clock = _ticking([1.0] * LATENCY_ROWS)
    report = validate(
        fraud, "fraud/1", str(holdout), maximum={"p99_ms": 2}, clock=lambda: next(clock)
    )
    assert report.passed and set(report.figures) == {"p50_ms", "p99_ms"}


def test_a_regressor_scores_as_scikit_learn_does(price: Path, registry: Registry) -> None:
    frame = pd.read_csv(price)
    report = validate(registry, "price/1", str(price), target="y", maximum={"rmse": 0.05})
    from seaway.api import load_model

    predicted = load_model("models:/price/1", registry=registry).predict(frame.drop(columns="y"))
    rmse = float(np.sqrt(mean_squared_error(frame["y"], predicted)))
    assert report.task == "regressor"
    assert report.figures["rmse"] == pytest.approx(rmse)
    assert report.figures["r2"] == pytest.approx(r2_score(frame["y"], predicted))
    assert report.failures == [f"rmse {rmse:.4g} is above the maximum 0.05"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"minimum": {"auc": 0.9}}, "min.auc: unknown metric; use one of accuracy"),
        ({"maximum": {"p99_ms": "fast"}}, "max.p99_ms: 'fast' is not a number"),
        ({"minimum": {"accuracy": 0.9}, "target": None}, "accuracy compares predictions with"),
        ({"maximum": {"rmse": 1.0}}, "rmse is not a classifier metric; a classifier's are"),
        ({"target": "outcome"}, "target column 'outcome' is not in"),
    ],
)
def test_what_cannot_be_measured_is_refused_naming_it(
    fraud: Registry, holdout: Path, kwargs: dict[str, object], expected: str
) -> None:
    arguments: dict[str, object] = {"target": "label", **kwargs}
    with pytest.raises(InvalidInputError) as caught:
        validate(fraud, "fraud/1", str(holdout), **arguments)  # type: ignore[arg-type]
    assert expected in str(caught.value)
    assert not isinstance(caught.value, ValidationFailedError)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.parquet", None, "no such file"),
        ("holdout.txt", b"a,b\n", "unknown format; name a .parquet, .csv, .jsonl file"),
        ("broken.parquet", b"not parquet", "cannot be read as .parquet"),
        ("empty.csv", b"age,income,score,tenure,label\n", "holds no rows"),
    ],
)
def test_unreadable_data_is_refused_naming_the_file(
    fraud: Registry, tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInputError) as caught:
        validate(fraud, "fraud/1", str(path), target="label")
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_inputs_the_model_cannot_take_are_refused_naming_the_version(
    fraud: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "other.csv"
    pd.DataFrame({"colour": ["red", "blue"], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match=r"models:/fraud/1 cannot score .*other\.csv"):
        validate(fraud, "fraud/1", str(path), target="label")
