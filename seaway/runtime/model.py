"""A loaded model: the package's predictor behind its signature.

``Model.predict`` accepts numpy arrays, DataFrames, dicts of arrays or lists, lists of records,
checks them against the signature (``InvalidInputError`` names what is wrong: no rows, a missing
value where the model takes none, a wrong type) exactly as the server and batch do, and returns
numpy arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from seaway.errors import UnsupportedOperationError
from seaway.packaging.flavors import Predictor
from seaway.packaging.manifest import Manifest
from seaway.packaging.reader import load_predictor, open_package, read_input_example
from seaway.packaging.signature import Signature, to_numpy
from seaway.packaging.writer import Package


@dataclass(frozen=True)
class ModelInfo:
    """Where a loaded model came from; ``name``/``version`` are set when it came from a registry."""

    uri: str
    name: str | None = None
    version: int | None = None


class Model:
    def __init__(self, package: Package, predictor: Predictor, info: ModelInfo) -> None:
        self._package = package
        self._predictor = predictor
        self.info = info

    @property
    def signature(self) -> Signature | None:
        return self._package.manifest.signature

    @property
    def metadata(self) -> Manifest:
        return self._package.manifest

    @property
    def flavor(self) -> str:
        return self._package.manifest.flavor

    @property
    def classes(self) -> list[Any] | None:
        """A classifier's class labels in ``predict_proba``'s column order (None: not a
        classifier, or a package logged before they were recorded)."""
        signature = self.signature
        return None if signature is None or signature.classes is None else list(signature.classes)

    @property
    def supports_proba(self) -> bool:
        return hasattr(self._predictor, "predict_proba")

    def predict(self, inputs: Any) -> Any:
        return to_numpy(self._predictor.predict(self._coerce(inputs)))

    def assemble(self, inputs: Any) -> Any:
        """Inputs a server already coerced with this signature (in a replica), as the model takes
        them: arrays as they are, not checked a second time; a DataFrame signature's columns,
        which servers send as plain arrays, put together (and checked) here."""
        signature = self.signature
        if signature is not None and signature.input_format == "dataframe":
            return signature.coerce(inputs)
        return inputs

    def predict_native(self, native: Any) -> Any:
        """``predict`` on what :meth:`assemble` returned."""
        return to_numpy(self._predictor.predict(native))

    def predict_proba_native(self, native: Any) -> Any:
        """``predict_proba`` on what :meth:`assemble` returned."""
        if not self.supports_proba:
            raise UnsupportedOperationError(
                f"this {self.flavor} model has no predict_proba; use predict()"
            )
        return to_numpy(self._predictor.predict_proba(native))  # type: ignore[attr-defined]

    def predict_proba(self, inputs: Any) -> Any:
        if not self.supports_proba:
            raise UnsupportedOperationError(
                f"this {self.flavor} model has no predict_proba; use predict()"
            )
        return to_numpy(self._predictor.predict_proba(self._coerce(inputs)))  # type: ignore[attr-defined]

    def input_example(self) -> Any:
        return read_input_example(self._package)

    def _coerce(self, inputs: Any) -> Any:
        signature = self.signature
        return signature.coerce(inputs) if signature is not None else inputs

    def __repr__(self) -> str:
        return f"<seaway.Model {self.info.uri} flavor={self.flavor}>"


def load_package(
    path: str | os.PathLike[str],
    *,
    trusted: bool = False,
    manifest_sha256: str | None = None,
    info: ModelInfo | None = None,
) -> Model:
    """Verify a package folder, then load it."""
    package = open_package(path, manifest_sha256=manifest_sha256)
    predictor = load_predictor(package, trusted=trusted)
    return Model(package, predictor, info or ModelInfo(uri=str(path)))
