"""`seaway predict`'s side of the wire: model URIs to served routes, and the files it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from seaway.cli.predict import read_inputs, served_route
from seaway.errors import InvalidInputError, InvalidURIError, MissingDependencyError


@pytest.mark.parametrize(
    ("model", "route"),
    [
        ("fraud", ("fraud", None)),
        ("fraud/3", ("fraud", "3")),
        ("models:/fraud/3", ("fraud", "3")),
        ("models:/fraud/latest", ("fraud", None)),
        ("models:/fraud@production", ("fraud", None)),
        ("fraud@production", ("fraud", None)),
    ],
)
def test_model_uris_map_to_the_served_name(model: str, route: tuple[str, str | None]) -> None:
    assert served_route(model) == route


def test_an_alias_says_what_it_means_against_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    served_route("models:/fraud@production")
    note = capsys.readouterr().err
    assert "the version the server serves as fraud" in note and "models:/fraud@production" in note


def test_a_bad_model_uri_is_refused() -> None:
    with pytest.raises(InvalidURIError, match="positive integer"):
        served_route("models:/fraud/0")


def test_parquet_is_read_as_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [1.0, 2.0], "city": ["a", "b"]})
    frame.to_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(read_inputs(tmp_path / "rows.parquet"), frame)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InvalidInputError, match="not a readable Parquet file"):
        read_inputs(tmp_path / "bad.parquet")


def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rows.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'seaway\[batch\]'"):
        read_inputs(tmp_path / "rows.parquet")
