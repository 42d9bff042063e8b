"""For every flavor: log it, load it back by every URI form, and get the original's predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seaway
from seaway.registry import Registry

Case = tuple[Any, Any, Callable[[Any], Any], Callable[[Any], Any] | None]


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def sklearn_case() -> Case:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data()
    model = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=10)).fit(x, y)
    return model, x, model.predict, model.predict_proba


def xgboost_case() -> Case:
    import xgboost as xgb

    x, y = _data()
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y)
    return model, x, model.predict, model.predict_proba


def lightgbm_case() -> Case:
    import lightgbm as lgb

    x, y = _data()
    model = lgb.LGBMClassifier(n_estimators=8, verbose=-1).fit(x, y)
    return model, x, model.predict, model.predict_proba


def torch_case() -> Case:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    ).eval()
    x, _ = _data()

    def predict(data: Any) -> Any:
        with torch.no_grad():
            return model(torch.from_numpy(data)).numpy()

    return model, x, predict, None


def onnx_case() -> Case:
    import skl2onnx
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    clf = LogisticRegression().fit(x, y)
    proto = skl2onnx.to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    return proto, x, clf.predict, clf.predict_proba


class Thresholder(seaway.PythonModel):
    def predict(self, inputs: Any) -> Any:
        return (np.asarray(inputs).sum(axis=1) > 0).astype(np.int64)


def pyfunc_case() -> Case:
    model = Thresholder()
    x, _ = _data()
    return model, x, model.predict, None


CASES = {
    "sklearn": sklearn_case,
    "xgboost": xgboost_case,
    "lightgbm": lightgbm_case,
    "torch": torch_case,
    "onnx": onnx_case,
    "python_function": pyfunc_case,
}


@pytest.mark.parametrize("flavor", list(CASES))
def test_log_and_load_by_every_uri_form(flavor: str, registry: Registry, tmp_path: Path) -> None:
    model, x, predict, predict_proba = CASES[flavor]()
    name = f"m-{flavor.replace('_', '-')}"
    first = seaway.log_model(model, name, sample_input=x[:10], registry=registry)
    assert first.flavor == flavor
    seaway.log_model(model, name, sample_input=x[:10], registry=registry)
    registry.set_alias(name, "production", 1)
    folder = seaway.save_model(model, tmp_path / "folder", sample_input=x[:10]).path

    expected = predict(x)
    for uri in (
        f"models:/{name}/1",
        f"models:/{name}@production",
        f"models:/{name}/latest",
        str(folder),
    ):
        loaded = seaway.load_model(uri, registry=registry)
        assert loaded.flavor == flavor
        got = loaded.predict(x)
        if np.issubdtype(np.asarray(expected).dtype, np.floating):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=uri)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=uri)
        if predict_proba is not None:
            np.testing.assert_allclose(
                loaded.predict_proba(x), predict_proba(x), rtol=1e-5, atol=1e-6
            )
    assert seaway.load_model(f"models:/{name}/latest", registry=registry).info.version == 2
