"""Artifact store URLs whose driver is missing name what to install."""

from __future__ import annotations

import pytest

from seaway.errors import ArtifactStoreError, MissingDependencyError
from seaway.registry.store import ArtifactStore


def test_s3_without_s3fs_names_the_extra() -> None:
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"pip install 'seaway\[s3\]'"):
            ArtifactStore("s3://bucket/models")
    else:  # pragma: no cover - only where s3fs is installed
        assert not ArtifactStore("s3://bucket/models").is_local


def test_other_protocols_name_the_driver() -> None:
    with pytest.raises(ArtifactStoreError, match="gcsfs"):
        ArtifactStore("gs://bucket/models")


def test_local_paths_are_local(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    assert store.is_local
    assert store.entries() == []
