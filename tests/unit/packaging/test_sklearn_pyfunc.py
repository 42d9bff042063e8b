"""scikit-learn (skops) and python-function flavors: round trips, trust, and bad models."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import seaway
from seaway.errors import SignatureError, UnsupportedModelError, UntrustedPackageError
from seaway.packaging.flavors import detect_flavor
from seaway.runtime import load_package


def _double(x: Any) -> Any:
    return x * 2


@pytest.fixture
def mixed() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, 300),
            "country": rng.choice(["NO", "PE", "JP"], 300),
            "age": rng.integers(18, 90, 300),
        }
    )
    target = ((frame["amount"] > 100) ^ (frame["country"] == "JP")).astype(int).to_numpy()
    return frame, target


def test_pipeline_with_column_transformer_round_trips(tmp_path: Path, mixed) -> None:
    frame, target = mixed
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["amount", "age"]),
                        ("cat", OneHotEncoder(), ["country"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, target)
    assert detect_flavor(model).name == "sklearn"
    package = seaway.save_model(
        model, tmp_path / "pkg", sample_input=frame.head(20), reference_data=frame
    )
    assert package.manifest.needs_trust == []
    assert [o.name for o in package.manifest.signature.outputs] == ["predict", "predict_proba"]  # type: ignore[union-attr]
    loaded = load_package(package.path)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(
        loaded.predict_proba(frame.to_dict("records")), model.predict_proba(frame)
    )
    pd.testing.assert_frame_equal(loaded.input_example(), frame.head(5))


def test_regressor_has_no_predict_proba(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, x[:, 0])
    loaded = load_package(seaway.save_model(model, tmp_path / "pkg", sample_input=x).path)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    assert not loaded.supports_proba
    with pytest.raises(seaway.SeawayError, match="no predict_proba"):
        loaded.predict_proba(x)


def test_custom_code_in_a_pipeline_needs_trust(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 2))
    model = make_pipeline(FunctionTransformer(_double), LogisticRegression()).fit(x, x[:, 0] > 0)
    package = seaway.save_model(model, tmp_path / "pkg", sample_input=x)
    assert "_double" in package.manifest.needs_trust[0]
    with pytest.raises(UntrustedPackageError, match=r"_double.*trusted=True"):
        load_package(package.path)
    np.testing.assert_array_equal(
        load_package(package.path, trusted=True).predict(x), model.predict(x)
    )


def test_a_sample_the_model_cannot_predict_on_is_refused(tmp_path: Path, tabular) -> None:
    frame, target = tabular
    model = LogisticRegression().fit(frame.to_numpy(), target)
    with pytest.raises(SignatureError, match="cannot predict on sample_input"):
        seaway.save_model(model, tmp_path / "pkg", sample_input=np.zeros((3, 7)))
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("obj", [object(), "not a model", lambda x: x])
def test_unsupported_objects_list_what_is_supported(tmp_path: Path, obj: object) -> None:
    with pytest.raises(UnsupportedModelError, match="Supported: scikit-learn"):
        seaway.save_model(obj, tmp_path / "pkg")


class Scaler(seaway.PythonModel):
    """Multiplies by a factor stored in an artifact."""

    def load(self, context: seaway.ModelContext) -> None:
        self.factor = float(context.artifacts["factor"].read_text())

    def predict(self, inputs: Any) -> Any:
        return np.asarray(inputs) * self.factor


def test_python_model_with_artifacts(tmp_path: Path) -> None:
    factor = tmp_path / "factor.txt"
    factor.write_text("3")
    instance = Scaler()
    instance.factor = 3.0
    x = np.arange(6.0).reshape(3, 2)
    package = seaway.save_model(
        instance, tmp_path / "pkg", sample_input=x, artifacts={"factor": factor}
    )
    assert package.manifest.needs_trust == []  # the class comes from an importable module
    np.testing.assert_array_equal(load_package(package.path).predict(x), x * 3)


class NeedsArgs(seaway.PythonModel):
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, inputs: Any) -> Any:
        return inputs


def test_python_model_must_be_constructible_without_arguments(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="no arguments"):
        seaway.save_model(NeedsArgs(2.0), tmp_path / "pkg")


def test_artifacts_are_only_for_python_models(tmp_path: Path, tabular) -> None:
    frame, target = tabular
    with pytest.raises(seaway.SeawayError, match="artifacts= and code_paths="):
        seaway.save_model(
            LogisticRegression().fit(frame, target), tmp_path / "p", artifacts={"a": tmp_path}
        )


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    import seaway

    class Adder(seaway.PythonModel):
        def predict(self, inputs):
            return np.asarray(inputs) + 1

    if __name__ == "__main__":
        Path(sys.argv[2]).write_text("trained")  # must not run again when the model loads
        seaway.save_model(Adder(), sys.argv[1], sample_input=np.zeros((2, 2)))
    """
)


def test_a_class_from_a_script_is_packaged_with_its_code(tmp_path: Path) -> None:
    script, marker = tmp_path / "train_adder.py", tmp_path / "marker"
    script.write_text(SCRIPT)
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "pkg"), str(marker)], check=True, timeout=120
    )
    marker.unlink()
    with pytest.raises(UntrustedPackageError, match="code/train_adder.py"):
        load_package(tmp_path / "pkg")
    model = load_package(tmp_path / "pkg", trusted=True)
    np.testing.assert_array_equal(model.predict([[1.0, 2.0]]), [[2.0, 3.0]])
    assert not marker.exists()
    assert not list((tmp_path / "pkg").rglob("__pycache__"))  # the checksummed folder stays clean
    load_package(tmp_path / "pkg", trusted=True)  # and verifies again
