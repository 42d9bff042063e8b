"""Signature inference from samples, and coercion of every accepted input form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InvalidInputError, SignatureError
from seaway.packaging.signature import (
    example_from_json,
    example_to_json,
    infer_outputs,
    infer_signature,
)
from seaway.types import Datatype


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [31, 45], "income": [1.5, 2.5], "city": ["Oslo", "Lima"], "vip": [True, False]}
    )


def test_dataframe_sample_gives_named_columns(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    assert sig.input_format == "dataframe"
    assert [(s.name, s.datatype, s.shape) for s in sig.inputs] == [
        ("age", Datatype.INT64, (-1,)),
        ("income", Datatype.FP64, (-1,)),
        ("city", Datatype.BYTES, (-1,)),
        ("vip", Datatype.BOOL, (-1,)),
    ]


def test_array_and_dict_samples() -> None:
    sig = infer_signature(np.zeros((3, 4, 2), dtype=np.float32))
    assert sig.input_format == "tensor"
    assert sig.inputs[0].model_dump() == {
        "name": "input",
        "datatype": Datatype.FP32,
        "shape": (-1, 4, 2),
    }
    sig = infer_signature({"ids": np.arange(3), "mask": np.ones((3, 5), dtype=bool)})
    assert sig.input_format == "tensors"
    assert [(s.name, s.datatype, s.shape) for s in sig.inputs] == [
        ("ids", Datatype.INT64, (-1,)),
        ("mask", Datatype.BOOL, (-1, 5)),
    ]


def test_outputs_including_tuples() -> None:
    outputs = infer_outputs((np.zeros(3), np.zeros((3, 2), dtype=np.float32)))
    assert [(s.name, s.datatype, s.shape) for s in outputs] == [
        ("predict-0", Datatype.FP64, (-1,)),
        ("predict-1", Datatype.FP32, (-1, 2)),
    ]


@pytest.mark.parametrize("bad", [np.float64(3.0), pd.DataFrame(), {}, np.array([1 + 2j])])
def test_unusable_samples_are_refused(bad: object) -> None:
    with pytest.raises(SignatureError):
        infer_signature(bad)


def test_dataframe_signature_accepts_every_reasonable_form(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    forms = [
        frame,
        frame.to_dict("list"),
        frame.to_dict("records"),
        frame.assign(extra=1),  # extra columns are ignored
        frame[["vip", "city", "income", "age"]],  # any column order
    ]
    for form in forms:
        out = sig.coerce(form)
        assert list(out.columns) == ["age", "income", "city", "vip"]
        assert out["age"].tolist() == [31, 45]


def test_numeric_dataframe_signature_accepts_plain_rows() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    assert sig.coerce([[1, 2], [3, 4]])["b"].tolist() == [2.0, 4.0]
    assert sig.coerce([5, 6])["a"].tolist() == [5.0]


def test_safe_casts_are_made_and_lossy_ones_refused() -> None:
    sig = infer_signature(np.zeros((2, 3), dtype=np.float32))
    assert sig.coerce([[1, 2, 3]]).dtype == np.float32  # int -> float is safe
    int_sig = infer_signature(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(InvalidInputError, match="FP64 values but the model expects INT64"):
        int_sig.coerce(np.ones((1, 3)))


def test_integers_out_of_the_inputs_range_are_refused_not_wrapped() -> None:
    small = infer_signature(np.zeros((2, 2), dtype=np.int8))
    assert small.coerce(np.array([[1, -128]])).tolist() == [[1, -128]]
    with pytest.raises(InvalidInputError, match=r"holds 300, outside INT8's range \[-128, 127\]"):
        small.coerce(np.array([[300, 1]]))  # astype would make it 44
    unsigned = infer_signature(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="holds -1, outside UINT8"):
        unsigned.coerce(np.array([[-1, 1]]))  # astype would make it 255
    with pytest.raises(InvalidInputError, match="not INT8"):
        small.coerce(np.array([["300", "1"]], dtype=object))  # OverflowError, not a 500


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"age": [1], "income": [1.0]}, r"missing input\(s\) \['city', 'vip'\]"),
        (
            {"age": ["x"], "income": [1.0], "city": ["a"], "vip": [True]},
            "'age' holds values that are not INT64",
        ),
        ({"age": [1, 2], "income": [1.0], "city": ["a"], "vip": [True]}, "different lengths"),
        (np.zeros((2, 7)), "takes 4 named columns"),
    ],
)
def test_bad_dataframe_inputs_are_named(frame: pd.DataFrame, data: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        infer_signature(frame).coerce(data)


def test_bad_tensor_inputs_are_named() -> None:
    sig = infer_signature(np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match=r"shape \[2, 4\] but the model expects \[-1, 3\]"):
        sig.coerce(np.zeros((2, 4)))
    with pytest.raises(InvalidInputError, match="not a rectangular array"):
        sig.coerce([[1, 2, 3], [1, 2]])
    multi = infer_signature({"a": np.zeros(2), "b": np.zeros(2)})
    with pytest.raises(InvalidInputError, match=r"unknown input\(s\) \['c'\]"):
        multi.coerce({"a": [1.0], "b": [1.0], "c": [1.0]})
    with pytest.raises(InvalidInputError, match="pass a dict of arrays"):
        multi.coerce(np.zeros((2, 2)))


def test_examples_round_trip(frame: pd.DataFrame) -> None:
    for sample in (frame, np.arange(12.0).reshape(6, 2), {"a": np.arange(3), "b": np.ones((3, 2))}):
        sig = infer_signature(sample)
        back = example_from_json(example_to_json(sample, sig), sig)
        if isinstance(sample, pd.DataFrame):
            pd.testing.assert_frame_equal(back, sample)
        elif isinstance(sample, dict):
            for key in sample:
                np.testing.assert_array_equal(back[key], sample[key])
        else:
            np.testing.assert_array_equal(back, sample[:5])


def test_raw_bytes_samples_make_binary_specs_and_examples_survive_json() -> None:
    import json

    from seaway.packaging.signature import example_from_json, example_to_json, infer_signature

    blobs = np.array([b"\x89PNG\r\n", b"\xff\xfe\x00", b""], dtype=object)
    captions = np.array(["a", "b", "c"], dtype=object)
    signature = infer_signature({"image": blobs, "caption": captions})
    specs = {spec.name: spec for spec in signature.inputs}
    assert specs["image"].binary and not specs["caption"].binary
    assert "binary" not in specs["caption"].model_dump(mode="json")  # absent when false
    example = example_to_json({"image": blobs, "caption": captions}, signature)
    back = example_from_json(json.loads(json.dumps(example)), signature)
    assert back["image"].tolist() == blobs.tolist()  # bytes, not lossy text
    assert back["caption"].tolist() == ["a", "b", "c"]
    frame = pd.DataFrame({"blob": blobs})
    frame_signature = infer_signature(frame)
    assert frame_signature.inputs[0].binary
    restored = example_from_json(
        json.loads(json.dumps(example_to_json(frame, frame_signature))), frame_signature
    )
    assert restored["blob"].tolist() == blobs.tolist()
