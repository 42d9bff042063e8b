"""Batch output of an ONNX model is named after the graph's own outputs (``label``,
``probabilities_<i>`` as skl2onnx writes them), as its signature and the servers name them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.batch import BatchOptions, run_job
from seaway.types import JobStatus

FEATURES = ("a", "b", "c")


def test_onnx_outputs_keep_the_graphs_names(registry: seaway.Registry, tmp_path: Path) -> None:
    import skl2onnx

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    proto = skl2onnx.to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    seaway.log_model(proto, "onx", registry=registry)

    data = pd.DataFrame(x[:40], columns=list(FEATURES)).astype(object)
    data.loc[:9, "a"] = "oops"  # the whole first chunk is rejected: an empty part
    data.insert(0, "id", np.arange(40))
    (tmp_path / "in").mkdir()
    data.to_csv(tmp_path / "in" / "rows.csv", index=False)
    out = tmp_path / "out"
    job = run_job(
        registry,
        BatchOptions(
            model="models:/onx/1",
            input=str(tmp_path / "in"),
            output=str(out),
            keep=("id",),
            features=FEATURES,
            proba=True,
            chunk_rows=10,
            workers=1,
        ),
    )
    assert job.status is JobStatus.SUCCEEDED
    assert (job.rows_out, job.rows_rejected) == (30, 10)
    parts = sorted(out.glob("part-*.parquet"))
    expected = ["id", "label", "probabilities_0", "probabilities_1"]
    for part in parts:  # every part, the empty one too, has the same columns
        assert pq.read_schema(part).names[:4] == expected
    result = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    scored = x[10:40].astype(np.float64)
    assert result["label"].tolist() == clf.predict(scored).tolist()
    np.testing.assert_allclose(
        result[["probabilities_0", "probabilities_1"]].to_numpy(),
        clf.predict_proba(scored),
        rtol=1e-4,
        atol=1e-5,
    )
