"""Importing MLflow model folders without MLflow.

Every folder here is written by hand in MLflow's on-disk layout (MLmodel YAML, signature as JSON
strings, input_example.json, requirements.txt), with real frameworks making the model files.
"""

from __future__ import annotations

import gzip
import importlib
import json
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from seaway.errors import (
    MissingDependencyError,
    MlflowImportError,
    SeawayWarning,
    UntrustedPackageError,
)
from seaway.packaging.mlflow import convert_signature, import_mlflow_model
from seaway.runtime import load_package
from seaway.types import Datatype

Tabular = tuple[pd.DataFrame, np.ndarray]


def colspec(frame: pd.DataFrame, mlflow_type: str = "double") -> str:
    return json.dumps([{"type": mlflow_type, "name": c, "required": True} for c in frame.columns])


LABEL_SPEC = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}])


def write_mlflow_model(
    folder: Path,
    flavors: dict[str, Any],
    *,
    signature: dict[str, Any] | None = None,
    example: tuple[dict[str, Any], Any] | None = None,
    requirements: tuple[str, ...] = ("mlflow==2.16.2", "cloudpickle==3.0.0", "numpy==1.26.4"),
) -> Path:
    """An MLmodel file plus its companions, as ``mlflow.<flavor>.save_model`` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    mlmodel: dict[str, Any] = {
        "artifact_path": "model",
        "flavors": flavors,
        "mlflow_version": "2.16.2",
        "model_size_bytes": 1234,
        "model_uuid": "0b6e4c2f7d1a4e8b9c3d2a1f0e9d8c7b",
        "run_id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "utc_time_created": "2024-10-01 12:00:00.000000",
    }
    if signature is not None:
        mlmodel["signature"] = {"params": None, **signature}
    if example is not None:
        info, content = example
        mlmodel["saved_input_example_info"] = {"artifact_path": "input_example.json", **info}
        (folder / "input_example.json").write_text(json.dumps(content))
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "requirements.txt").write_text("\n".join(requirements))
    (folder / "conda.yaml").write_text("name: mlflow-env\ndependencies: [python=3.11.9]\n")
    (folder / "python_env.yaml").write_text("python: 3.11.9\ndependencies: [-r requirements.txt]\n")
    return folder


def pyfunc_conf(loader: str, **extra: Any) -> dict[str, Any]:
    env = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    return {"loader_module": loader, "env": env, "python_version": "3.11.9", **extra}


def split_example(frame: pd.DataFrame) -> tuple[dict[str, Any], Any]:
    content = {"columns": list(frame.columns), "data": frame.head(3).to_numpy().tolist()}
    return {"type": "dataframe", "pandas_orient": "split"}, content


# --- scikit-learn --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_sklearn_pickle_is_kept_and_needs_trust(tmp_path: Path, tabular: Tabular, fmt: str) -> None:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes((cloudpickle if fmt == "cloudpickle" else pickle).dumps(model))
    sklearn_conf = {"pickled_model": "model.pkl", "serialization_format": fmt, "code": None}
    write_mlflow_model(
        src,
        {
            "python_function": pyfunc_conf("mlflow.sklearn", model_path="model.pkl"),
            "sklearn": {**sklearn_conf, "sklearn_version": "1.5.2"},
        },
        signature={"inputs": colspec(frame), "outputs": LABEL_SPEC},
        example=split_example(frame),
        requirements=(
            "mlflow==2.16.2",
            "scikit-learn==1.5.2",
            f"{fmt}==3.0.0" if fmt != "pickle" else "numpy",
        ),
    )

    package = import_mlflow_model(src, tmp_path / "pkg")

    manifest = package.manifest
    assert manifest.flavor == "sklearn"
    assert manifest.flavor_options == {"file": "model.pkl", "serialization": fmt}
    assert manifest.framework.version == "1.5.2"
    assert manifest.needs_trust and "pickle" in manifest.needs_trust[0]
    assert "scikit-learn==1.5.2" in manifest.requirements
    assert not any(line.startswith("mlflow") for line in manifest.requirements)
    with pytest.raises(UntrustedPackageError, match="pickle"):
        load_package(package.path)
    loaded = load_package(package.path, trusted=True)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    assert list(loaded.input_example().columns) == list(frame.columns)


def test_import_never_unpickles(tmp_path: Path, tabular: Tabular) -> None:
    frame, _ = tabular
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes(b"not a pickle: importing must not even try to read it")
    write_mlflow_model(
        src,
        {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"}},
        signature={"inputs": colspec(frame)},
    )
    package = import_mlflow_model(src, tmp_path / "pkg")
    assert (package.path / "model" / "model.pkl").read_bytes().startswith(b"not a pickle")


def test_sklearn_skops_loads_without_trust(tmp_path: Path, tabular: Tabular) -> None:
    import skops.io as sio

    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    sio.dump(model, src / "model.skops")
    conf = {
        "pickled_model": "model.skops",
        "serialization_format": "skops",
        "sklearn_version": "1.5.2",
    }
    write_mlflow_model(src, {"sklearn": conf}, signature={"inputs": colspec(frame)})

    package = import_mlflow_model(src, tmp_path / "pkg")

    assert package.manifest.flavor_options == {"file": "model.skops", "serialization": "skops"}
    assert package.manifest.needs_trust == []
    np.testing.assert_array_equal(load_package(package.path).predict(frame), model.predict(frame))


def test_lightgbm_sklearn_api_pickle_is_kept_under_sklearn(
    tmp_path: Path, tabular: Tabular
) -> None:
    lgb = importlib.import_module("lightgbm")
    frame, target = tabular
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(frame, target)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes(cloudpickle.dumps(model))
    conf = {
        "data": "model.pkl",
        "model_class": "lightgbm.sklearn.LGBMClassifier",
        "lgb_version": "4.5.0",
    }
    write_mlflow_model(
        src,
        {"python_function": pyfunc_conf("mlflow.lightgbm", data="model.pkl"), "lightgbm": conf},
        signature={"inputs": colspec(frame)},
    )

    package = import_mlflow_model(src, tmp_path / "pkg")

    assert package.manifest.flavor == "sklearn"
    assert package.manifest.framework.name == "lightgbm"
    with pytest.raises(UntrustedPackageError, match="pickle"):
        load_package(package.path)
    loaded = load_package(package.path, trusted=True)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


# --- native boosters, re-saved with save_model ------------------------------------------------


@pytest.mark.filterwarnings(
    "ignore::UserWarning:xgboost"
)  # MLflow's .xgb name: XGBoost guesses UBJSON
def test_xgboost_native_model_is_resaved(tmp_path: Path, tabular: Tabular) -> None:
    xgb = importlib.import_module("xgboost")
    frame, target = tabular
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, target)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    model.save_model(src / "model.xgb")
    conf = {
        "data": "model.xgb",
        "model_class": "xgboost.sklearn.XGBClassifier",
        "model_format": "xgb",
        "xgb_version": xgb.__version__,
        "code": None,
    }
    write_mlflow_model(
        src,
        {"python_function": pyfunc_conf("mlflow.xgboost", data="model.xgb"), "xgboost": conf},
        signature={"inputs": colspec(frame), "outputs": LABEL_SPEC},
        example=split_example(frame),
        requirements=("mlflow==2.16.2", f"xgboost=={xgb.__version__}"),
    )

    package = import_mlflow_model(src, tmp_path / "pkg")

    assert package.manifest.flavor == "xgboost"
    assert package.manifest.needs_trust == []
    assert package.manifest.signature is not None
    assert package.manifest.signature.input_names == list(frame.columns)
    loaded = load_package(package.path)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert loaded.input_example().shape == (3, 4)


def test_lightgbm_booster_is_resaved(tmp_path: Path, tabular: Tabular) -> None:
    lgb = importlib.import_module("lightgbm")
    frame, target = tabular
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4}
    booster = lgb.train(params, lgb.Dataset(frame, target), num_boost_round=5)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    booster.save_model(src / "model.lgb")
    conf = {"data": "model.lgb", "model_class": "lightgbm.basic.Booster", "lgb_version": "4.5.0"}
    write_mlflow_model(
        src,
        {"python_function": pyfunc_conf("mlflow.lightgbm", data="model.lgb"), "lightgbm": conf},
        signature={"inputs": colspec(frame)},
    )

    package = import_mlflow_model(src, tmp_path / "pkg")

    assert package.manifest.flavor == "lightgbm"
    loaded = load_package(package.path)
    np.testing.assert_allclose(np.ravel(loaded.predict(frame)), booster.predict(frame))


# --- python_function (PythonModel) -------------------------------------------------------------

FAKE_MLFLOW = {
    "mlflow": "",
    "mlflow.pyfunc": "",
    "mlflow.pyfunc.utils": "",
    # MLflow >= 2.20 wraps every subclass's predict in a validator that refers to its helpers.
    "mlflow.pyfunc.utils.data_validation": """
        import functools

        def _validate_model_input(args, kwargs):
            return args, kwargs

        def _wrap_predict_with_pyfunc(func):
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                args, kwargs = _validate_model_input(args, kwargs)
                return func(*args, **kwargs)
            wrapper._is_pyfunc = True
            return wrapper
    """,
    "mlflow.pyfunc.model": """
        from mlflow.pyfunc.utils.data_validation import _wrap_predict_with_pyfunc

        class PythonModel:
            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                if "predict" in cls.__dict__:
                    cls.predict = _wrap_predict_with_pyfunc(cls.__dict__["predict"])

            def load_context(self, context):
                pass
    """,
}


def pickle_python_model(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Cloudpickle a PythonModel subclass the way MLflow does, against a fake MLflow that exists
    only while pickling. The class is local, so cloudpickle stores it by value."""
    for name, source in FAKE_MLFLOW.items():
        module = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, module)
        exec(textwrap.dedent(source), module.__dict__)  # a fake MLflow, only while pickling
    base = sys.modules["mlflow.pyfunc.model"].PythonModel

    class Scaler(base):  # type: ignore[misc, valid-type]
        def load_context(self, context: Any) -> None:
            with open(context.artifacts["factor"]) as handle:
                self.factor = float(handle.read())
            self.offset = context.model_config["offset"]

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["a"].to_numpy() * self.factor + self.offset

    data: bytes = cloudpickle.dumps(Scaler())
    monkeypatch.undo()
    return data


def write_pyfunc_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, gzipped: bool = False
) -> Path:
    src = tmp_path / "mlflow-model"
    (src / "artifacts").mkdir(parents=True)
    (src / "artifacts" / "factor.txt").write_text("2.5")
    data = pickle_python_model(monkeypatch)
    name = "python_model.pkl.gz" if gzipped else "python_model.pkl"
    (src / name).write_bytes(gzip.compress(data) if gzipped else data)
    conf = pyfunc_conf(
        "mlflow.pyfunc.model",
        python_model=name,
        python_model_compression="gzip" if gzipped else None,
        cloudpickle_version=cloudpickle.__version__,
        artifacts={"factor": {"path": "artifacts/factor.txt", "uri": "/tmp/factor.txt"}},
        model_config={"offset": 1.0},
        code=None,
        streamable=False,
    )
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    signature = {
        "inputs": json.dumps([{"type": "double", "name": "a"}, {"type": "string", "name": "b"}])
    }
    return write_mlflow_model(
        src, {"python_function": conf}, signature=signature, example=split_example(frame)
    )


def test_python_model_loads_in_a_process_without_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = import_mlflow_model(write_pyfunc_model(tmp_path, monkeypatch), tmp_path / "pkg")
    assert package.manifest.flavor == "mlflow_pyfunc"
    assert "pickle" in package.manifest.needs_trust[0]
    with pytest.raises(UntrustedPackageError, match="pickle"):
        load_package(package.path)

    script = f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("mlflow") is None, "mlflow must not be importable here"
        from seaway.runtime import load_package
        model = load_package({str(package.path)!r}, trusted=True)
        out = model.predict({{"a": [1.0, 4.0], "b": ["p", "q"]}})
        assert not any(name.split(".")[0] == "mlflow" for name in sys.modules)
        print(json.dumps([float(x) for x in out]))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [3.5, 11.0]


def test_compressed_python_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_pyfunc_model(tmp_path, monkeypatch, gzipped=True)
    loaded = load_package(import_mlflow_model(src, tmp_path / "pkg").path, trusted=True)
    np.testing.assert_allclose(loaded.predict({"a": [2.0], "b": ["z"]}), [6.0])


def test_missing_cloudpickle_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = import_mlflow_model(write_pyfunc_model(tmp_path, monkeypatch), tmp_path / "pkg")
    for name in ("cloudpickle", "cloudpickle.cloudpickle"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"seaway\[mlflow\]"):
        load_package(package.path, trusted=True)


def test_custom_loader_module_in_code_folder(tmp_path: Path) -> None:
    src = tmp_path / "mlflow-model"
    (src / "code").mkdir(parents=True)
    (src / "data").mkdir()
    (src / "data" / "bias.txt").write_text("10")
    (src / "code" / "seaway_test_loader.py").write_text(
        textwrap.dedent("""
            from pathlib import Path

            class _Model:
                def __init__(self, bias):
                    self.bias = bias

                def predict(self, model_input):
                    return model_input["x"].to_numpy() + self.bias

            def _load_pyfunc(data_path):
                return _Model(float((Path(data_path) / "bias.txt").read_text()))
        """)
    )
    conf = pyfunc_conf("seaway_test_loader", data="data", code="code")
    signature = {"inputs": json.dumps([{"type": "long", "name": "x"}])}
    write_mlflow_model(src, {"python_function": conf}, signature=signature)

    package = import_mlflow_model(src, tmp_path / "pkg")

    assert any("code" in reason for reason in package.manifest.needs_trust)
    with pytest.raises(UntrustedPackageError):
        load_package(package.path)
    np.testing.assert_array_equal(
        load_package(package.path, trusted=True).predict({"x": [1, 2]}), [11, 12]
    )


# --- signature and input example ---------------------------------------------------------------


def test_colspec_signature_maps_every_mlflow_type(tmp_path: Path) -> None:
    names = ["double", "float", "long", "integer", "boolean", "string", "binary", "datetime"]
    raw = {
        "inputs": json.dumps([{"type": t, "name": f"c_{t}", "required": True} for t in names]),
        "outputs": json.dumps([{"type": "double", "name": "score"}]),
    }
    sig = convert_signature(raw, tmp_path / "MLmodel")
    assert sig is not None and sig.input_format == "dataframe"
    assert [(s.name, s.datatype, s.shape) for s in sig.inputs] == [
        ("c_double", Datatype.FP64, (-1,)),
        ("c_float", Datatype.FP32, (-1,)),
        ("c_long", Datatype.INT64, (-1,)),
        ("c_integer", Datatype.INT32, (-1,)),
        ("c_boolean", Datatype.BOOL, (-1,)),
        ("c_string", Datatype.BYTES, (-1,)),
        ("c_binary", Datatype.BYTES, (-1,)),
        ("c_datetime", Datatype.BYTES, (-1,)),
    ]
    assert [(s.name, s.datatype) for s in sig.outputs] == [("score", Datatype.FP64)]
    unnamed = convert_signature({"inputs": '[{"type": "double"}, {"type": "long"}]'}, tmp_path)
    assert unnamed is not None and unnamed.input_names == ["0", "1"]


def test_tensor_signatures(tmp_path: Path) -> None:
    one = {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}
    sig = convert_signature({"inputs": json.dumps([one]), "outputs": LABEL_SPEC}, tmp_path)
    assert sig is not None and sig.input_format == "tensor"
    assert (sig.inputs[0].datatype, sig.inputs[0].shape) == (Datatype.FP32, (-1, 28, 28))
    assert (sig.outputs[0].name, sig.outputs[0].datatype) == ("predict", Datatype.INT64)
    named = [
        {"type": "tensor", "name": "ids", "tensor-spec": {"dtype": "int64", "shape": [-1, 8]}},
        {"type": "tensor", "name": "mask", "tensor-spec": {"dtype": "bool", "shape": [-1, 8]}},
    ]
    sig = convert_signature({"inputs": json.dumps(named)}, tmp_path)
    assert sig is not None and sig.input_format == "tensors" and sig.input_names == ["ids", "mask"]


def test_signature_seaway_cannot_express_is_skipped_with_a_warning(tmp_path: Path) -> None:
    raw = {"inputs": json.dumps([{"type": "array", "items": {"type": "string"}, "name": "tags"}])}
    with pytest.warns(SeawayWarning, match="cannot express"):
        assert convert_signature(raw, tmp_path / "MLmodel") is None


def test_ndarray_example_with_tensor_signature(tmp_path: Path, tabular: Tabular) -> None:
    frame, target = tabular
    model = LogisticRegression().fit(frame.to_numpy(), target)
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes(pickle.dumps(model))
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]
    write_mlflow_model(
        src,
        {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"}},
        signature={"inputs": json.dumps(tensor), "outputs": LABEL_SPEC},
        example=(
            {"type": "ndarray", "format": "tf-serving"},
            {"inputs": frame.head(2).to_numpy().tolist()},
        ),
    )

    loaded = load_package(import_mlflow_model(src, tmp_path / "pkg").path, trusted=True)

    assert loaded.signature is not None and loaded.signature.input_format == "tensor"
    np.testing.assert_allclose(loaded.input_example(), frame.head(2).to_numpy())
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), model.predict(frame.to_numpy()))


def test_records_example_without_signature_gives_an_inferred_one(
    tmp_path: Path, tabular: Tabular
) -> None:
    frame, target = tabular
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(frame, target)))
    records = frame.head(2).to_dict(orient="records")
    write_mlflow_model(
        src,
        {"sklearn": {"pickled_model": "model.pkl"}},
        example=({"type": "dataframe", "pandas_orient": "records"}, records),
    )

    manifest = import_mlflow_model(src, tmp_path / "pkg").manifest

    assert manifest.signature is not None
    assert manifest.signature.input_names == list(frame.columns)
    assert manifest.input_example == "input_example.json"


# --- errors that name the file and the fix -----------------------------------------------------


def test_missing_mlmodel_points_at_the_nested_folder(tmp_path: Path) -> None:
    write_mlflow_model(tmp_path / "run" / "model", {"sklearn": {"pickled_model": "model.pkl"}})
    with pytest.raises(MlflowImportError, match=r"no MLmodel file .*run[/\\]model has one"):
        import_mlflow_model(tmp_path / "run", tmp_path / "pkg")


def test_unreadable_mlmodel(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(MlflowImportError, match="MLmodel is not valid YAML"):
        import_mlflow_model(tmp_path / "m", tmp_path / "pkg")


@pytest.mark.parametrize(
    "flavors",
    [
        {"tensorflow": {"saved_model_dir": "tfmodel"}},
        {"python_function": pyfunc_conf("mlflow.tensorflow", data="tfmodel")},
    ],
)
def test_unsupported_flavor_lists_what_is_supported(
    tmp_path: Path, flavors: dict[str, Any]
) -> None:
    src = write_mlflow_model(tmp_path / "m", flavors)
    with pytest.raises(MlflowImportError, match=r"cannot import\. Seaway imports sklearn, xgboost"):
        import_mlflow_model(src, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    src = write_mlflow_model(tmp_path / "m", {"sklearn": {"pickled_model": "model.pkl"}})
    with pytest.raises(
        MlflowImportError, match=r"model\.pkl is missing.*download the whole folder"
    ):
        import_mlflow_model(src, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
    assert not any(p.name.startswith(".pkg.staging") for p in tmp_path.iterdir())


def test_paths_outside_the_model_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.pkl").write_bytes(b"x")
    src = write_mlflow_model(tmp_path / "m", {"sklearn": {"pickled_model": "../secret.pkl"}})
    with pytest.raises(MlflowImportError, match="names no usable"):
        import_mlflow_model(src, tmp_path / "pkg")
