"""XGBoost, LightGBM, PyTorch and ONNX flavors: detection, round trips, signatures and failures."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
import xgboost as xgb
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression

from seaway.errors import (
    MissingDependencyError,
    PackagingError,
    UnsupportedModelError,
)
from seaway.packaging import save_model
from seaway.packaging.flavors import LoadContext, detect_flavor
from seaway.packaging.flavors.lightgbm import LightGBMFlavor
from seaway.packaging.flavors.onnx import OnnxFlavor
from seaway.packaging.flavors.torch import TorchFlavor
from seaway.packaging.flavors.xgboost import XGBoostFlavor
from seaway.packaging.signature import TensorSpec
from seaway.runtime import load_package
from seaway.types import Datatype

RNG = np.random.default_rng(7)
X = RNG.normal(size=(120, 4))
Y_BINARY = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_MULTI = np.digitize(X[:, 0], [-0.5, 0.5])
Y_REG = X[:, 0] * 2 + X[:, 2]


def round_trip(model: Any, path: Path, sample: Any = None) -> Any:
    return load_package(save_model(model, path / "pkg", sample_input=sample).path)


# --- XGBoost -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "target", "fit_kwargs"),
    [
        (xgb.XGBClassifier, Y_MULTI, {}),
        (xgb.XGBRegressor, Y_REG, {}),
        (xgb.XGBRanker, Y_MULTI, {"qid": np.repeat(np.arange(12), 10)}),
        (xgb.XGBRFClassifier, Y_BINARY, {}),
        (xgb.XGBRFRegressor, Y_REG, {}),
    ],
)
def test_xgboost_wrappers_round_trip(
    tmp_path: Path, cls: Any, target: Any, fit_kwargs: Any
) -> None:
    # a custom `missing` is not in XGBoost's file; the flavor must carry it
    model = cls(n_estimators=4, max_depth=3, missing=-999.0).fit(X, target, **fit_kwargs)
    data = X.copy()
    data[:10, 0] = -999.0
    assert detect_flavor(model).name == "xgboost"
    loaded = round_trip(model, tmp_path, X[:5])
    assert loaded.metadata.flavor_options["class"] == cls.__name__
    assert any(r.startswith("xgboost-cpu==") for r in loaded.metadata.requirements)
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))
    is_classifier = hasattr(model, "predict_proba")
    assert loaded.supports_proba is is_classifier
    if is_classifier:
        np.testing.assert_allclose(loaded.predict_proba(data), model.predict_proba(data))


@pytest.mark.parametrize("sample_as_frame", [True, False])
def test_xgboost_booster_takes_arrays_and_frames(tmp_path: Path, sample_as_frame: bool) -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(frame, label=Y_BINARY), 5
    )
    assert detect_flavor(booster).name == "xgboost"
    sample = frame.head(5) if sample_as_frame else X[:5]
    loaded = round_trip(booster, tmp_path, sample)
    assert loaded.signature.input_format == ("dataframe" if sample_as_frame else "tensor")
    expected = booster.predict(xgb.DMatrix(frame))
    np.testing.assert_allclose(loaded.predict(X), expected)
    np.testing.assert_allclose(loaded.predict(frame), expected)
    assert not loaded.supports_proba


def test_xgboost_unfitted_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="fit it before saving"):
        save_model(xgb.XGBClassifier(), tmp_path / "pkg")


# --- LightGBM ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        np.where(Y_BINARY == 1, "yes", "no"),
        np.array(["low", "mid", "high"])[Y_MULTI],
        Y_MULTI * 10,
    ],
    ids=["binary-str", "multiclass-str", "multiclass-int"],
)
def test_lightgbm_classifier_rebuilt_without_pickle(tmp_path: Path, labels: Any) -> None:
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, labels)
    assert detect_flavor(model).name == "lightgbm"
    loaded = round_trip(model, tmp_path, X[:5])
    options = loaded.metadata.flavor_options
    assert options["class"] == "LGBMClassifier"
    assert options["n_classes"] == len(model.classes_)
    assert options["classes"] == model.classes_.tolist()
    predicted = loaded.predict(X)
    np.testing.assert_array_equal(predicted, model.predict(X))
    assert predicted.dtype == model.predict(X).dtype
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def _logloss(y_true: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = 1 / (1 + np.exp(-raw))
    return p - y_true, p * (1 - p)


@pytest.mark.filterwarnings("ignore:Cannot compute class probabilities:UserWarning")
def test_lightgbm_custom_objective_returns_raw_scores(tmp_path: Path) -> None:
    model = lgb.LGBMClassifier(n_estimators=5, objective=_logloss, verbose=-1).fit(X, Y_BINARY)
    loaded = round_trip(model, tmp_path, X[:5])
    assert loaded.metadata.flavor_options["objective"] == "custom"
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))  # raw scores, as LightGBM does
    assert not loaded.supports_proba


@pytest.mark.parametrize("kind", ["regressor", "ranker", "booster"])
def test_lightgbm_regression_models_round_trip(tmp_path: Path, kind: str) -> None:
    model: Any
    if kind == "regressor":
        model = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, Y_REG)
    elif kind == "ranker":
        model = lgb.LGBMRanker(n_estimators=5, verbose=-1).fit(X, Y_MULTI, group=[10] * 12)
    else:
        params = {"objective": "regression", "verbose": -1}
        model = lgb.train(params, lgb.Dataset(X, Y_REG), num_boost_round=5)
    assert detect_flavor(model).name == "lightgbm"
    loaded = round_trip(model, tmp_path, X[:5])
    assert (tmp_path / "pkg" / "model" / "model.txt").read_text().startswith("tree")
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    assert not loaded.supports_proba


# --- PyTorch -----------------------------------------------------------------------------------


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.Linear(8, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.left = torch.nn.Linear(4, 3)
        self.right = torch.nn.Linear(2, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.left(a) - self.right(b)


class NeedsTracing(Mlp):
    """Scripting rejects ``**kwargs``; tracing records the one path it takes."""

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.net(x) * 2


class Untraceable(torch.nn.Module):
    def forward(self, x: Any, **kwargs: Any) -> Any:
        return {"shape": list(x.shape)}


def reference(module: torch.nn.Module, *arrays: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return module(*(torch.as_tensor(a, dtype=torch.float32) for a in arrays)).numpy()


def test_torch_module_scripted_and_casts_float64(tmp_path: Path) -> None:
    model = Mlp()
    assert detect_flavor(model).name == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.jit's deprecation warnings must not leak
        loaded = round_trip(model, tmp_path, X[:5])  # float64 sample, float32 module
        predicted = loaded.predict(X)
    assert model.training, "saving must give the module back in training mode"
    assert loaded.metadata.flavor_options == {
        "file": "model.pt",
        "method": "script",
        "float_dtype": "float32",
    }
    assert predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, reference(model, X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(X), predicted)  # eval mode: dropout is off
    assert not loaded.supports_proba


def test_torch_dict_inputs_are_positional(tmp_path: Path) -> None:
    model = TwoInputs()
    sample = {"a": X[:5].astype(np.float32), "b": X[:5, :2].astype(np.float32)}
    loaded = round_trip(model, tmp_path, sample)
    assert loaded.signature.input_format == "tensors"
    assert loaded.signature.input_names == ["a", "b"]
    # given in the other order, still passed in signature order
    predicted = loaded.predict({"b": X[:, :2], "a": X})
    np.testing.assert_allclose(predicted, reference(model, X, X[:, :2]), rtol=1e-5, atol=1e-6)


def test_torch_dataframe_becomes_float_array(tmp_path: Path) -> None:
    model = Mlp()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(d=lambda f: (f.d * 10).astype(int))
    loaded = round_trip(model, tmp_path, frame.head(5))
    assert loaded.signature.input_format == "dataframe"
    np.testing.assert_allclose(
        loaded.predict(frame), reference(model, frame.to_numpy()), rtol=1e-5, atol=1e-6
    )


def test_torch_falls_back_to_tracing(tmp_path: Path) -> None:
    model = NeedsTracing()
    loaded = round_trip(model, tmp_path, X[:5].astype(np.float32))
    assert loaded.metadata.flavor_options["method"] == "trace"
    np.testing.assert_allclose(loaded.predict(X), reference(model, X), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_script_module_saved_as_is(tmp_path: Path) -> None:
    model = Mlp().eval()
    scripted = torch.jit.script(model)
    loaded = round_trip(scripted, tmp_path, X[:5])
    assert loaded.metadata.flavor_options["method"] == "torchscript"
    np.testing.assert_allclose(loaded.predict(X), reference(model, X), rtol=1e-5, atol=1e-6)


def test_torch_tracing_needs_a_sample(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="pass sample_input="):
        save_model(NeedsTracing(), tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_torch_neither_scriptable_nor_traceable(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="neither scripted .* nor traced"):
        save_model(Untraceable(), tmp_path / "pkg", sample_input=X[:5])


# --- ONNX --------------------------------------------------------------------------------------

X32 = X.astype(np.float32)


def sklearn_onnx(model: Any) -> onnx.ModelProto:
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    return to_onnx(model, X32[:1], options=options)


def ort_outputs(proto: onnx.ModelProto, feed: dict[str, Any]) -> list[Any]:
    """The original model's outputs, straight from onnxruntime."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def test_onnx_classifier_signature_and_proba(tmp_path: Path) -> None:
    model = LogisticRegression().fit(X32, Y_MULTI)
    proto = sklearn_onnx(model)
    assert detect_flavor(proto).name == "onnx"
    loaded = round_trip(proto, tmp_path, X[:5])  # float64 sample checked against FP32 graph
    signature = loaded.signature
    assert signature.input_format == "tensor"
    # onnxruntime predicts on NaN without raising (the probe at log time finds it out)
    assert signature.inputs == (
        TensorSpec(name="X", datatype=Datatype.FP32, shape=(-1, 4), allows_missing=True),
    )
    assert signature.outputs == (
        TensorSpec(name="label", datatype=Datatype.INT64, shape=(-1,)),
        TensorSpec(name="probabilities", datatype=Datatype.FP32, shape=(-1, 3)),
    )
    label, proba = ort_outputs(proto, {"X": X32})
    np.testing.assert_array_equal(loaded.predict(X32), label)
    np.testing.assert_array_equal(loaded.predict_proba(X32), proba)
    np.testing.assert_array_equal(label, model.predict(X32))


@pytest.mark.parametrize("as_str", [True, False])
def test_onnx_file_path_without_proba(tmp_path: Path, as_str: bool) -> None:
    model = LinearRegression().fit(X32, Y_REG)
    file = tmp_path / "regressor.onnx"
    onnx.save_model(sklearn_onnx(model), file)
    source: Any = str(file) if as_str else file
    assert OnnxFlavor().matches(source)
    assert detect_flavor(source).name == "onnx"
    loaded = round_trip(source, tmp_path)  # no sample: the signature comes from the graph
    assert loaded.signature.inputs[0].name == "X"
    (expected,) = ort_outputs(onnx.load(file), {"X": X32})
    np.testing.assert_array_equal(loaded.predict(X32), expected)
    assert not loaded.supports_proba
    assert not hasattr(loaded._predictor, "predict_proba")


def test_onnx_several_inputs_with_symbolic_dims(tmp_path: Path) -> None:
    a = helper.make_tensor_value_info("a", TensorProto.DOUBLE, ["batch", 2])
    b = helper.make_tensor_value_info("b", TensorProto.DOUBLE, ["batch", 2])
    out = helper.make_tensor_value_info("sum", TensorProto.DOUBLE, ["batch", 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [out])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    loaded = round_trip(proto, tmp_path)
    signature = loaded.signature
    assert signature.input_format == "tensors"
    assert [s.shape for s in signature.inputs] == [(-1, 2), (-1, 2)]
    assert signature.outputs == (TensorSpec(name="sum", datatype=Datatype.FP64, shape=(-1, 2)),)
    np.testing.assert_allclose(loaded.predict({"a": X[:, :2], "b": X[:, 2:]}), X[:, :2] + X[:, 2:])


def test_onnx_corrupt_or_invalid_model_is_rejected(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not protobuf \xff\xff\xff")
    with pytest.raises(PackagingError, match="corrupt.onnx"):
        save_model(corrupt, tmp_path / "pkg")
    node = helper.make_node("Add", ["a", "missing"], ["out"])
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 2])
    invalid = helper.make_model(helper.make_graph([node], "bad", [a], [out]))
    with pytest.raises(PackagingError, match="not valid ONNX"):
        save_model(invalid, tmp_path / "pkg2")
    with pytest.raises(PackagingError, match="does not exist"):
        save_model(tmp_path / "absent.onnx", tmp_path / "pkg3")


# --- optional dependencies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "module", "extra"),
    [
        (XGBoostFlavor(), "xgboost", "xgboost"),
        (LightGBMFlavor(), "lightgbm", "lightgbm"),
        (TorchFlavor(), "torch", "torch"),
        (OnnxFlavor(), "onnxruntime", "onnx"),
    ],
)
def test_missing_framework_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavor: Any, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    assert not flavor.matches(object())  # detection never imports the framework
    context = LoadContext(package_dir=tmp_path, model_dir=tmp_path, options={}, trusted=False)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'seaway\[{extra}\]'"):
        flavor.load(context)


def test_onnx_save_needs_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"seaway\[onnx\]"):
        save_model(tmp_path / "model.onnx", tmp_path / "pkg")


# --- pandas categorical columns survive the signature ------------------------------------------


def _categorical_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=300),
            "country": pd.Categorical(
                rng.choice(["NO", "PE", "JP"], 300), categories=["JP", "NO", "PE"]
            ),
        }
    )
    target = ((frame["country"] == "JP") ^ (frame["amount"] > 0)).astype(np.int64).to_numpy()
    return frame, target


def test_categorical_columns_reach_lightgbm_and_xgboost_as_categories(tmp_path: Path) -> None:
    frame, target = _categorical_frame()
    models = {
        "lgb": lgb.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1).fit(
            frame, target
        ),
        "xgb": xgb.XGBClassifier(n_estimators=10, enable_categorical=True, tree_method="hist").fit(
            frame, target
        ),
    }
    plain = {"amount": frame["amount"].tolist(), "country": frame["country"].astype(str).tolist()}
    for key, model in models.items():
        package = save_model(model, tmp_path / key, sample_input=frame.head(20))
        spec = package.manifest.signature.inputs[1]  # type: ignore[union-attr]
        assert spec.categories == ("JP", "NO", "PE")
        loaded = load_package(package.path)
        expected = model.predict_proba(frame)
        np.testing.assert_allclose(loaded.predict_proba(frame), expected, rtol=1e-6, err_msg=key)
        # JSON-like input without a category dtype is given the training categories
        np.testing.assert_allclose(loaded.predict_proba(plain), expected, rtol=1e-6, err_msg=key)
