"""PyTorch modules, stored as TorchScript so that loading needs neither pickle nor the model's code.

``torch.jit.script`` compiles the module's code, control flow included; a module it cannot compile
is traced with the sample input instead, which records one path through ``forward``. Both run in
eval mode, so dropout and batch-norm statistics are frozen as they would be when serving.

torch 2.13 deprecates every ``torch.jit`` entry point with a ``DeprecationWarning`` per call; they
are silenced here, where Seaway chose TorchScript on purpose, rather than shown to every user.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from seaway.errors import InvalidInputError, ModelLoadError, UnsupportedModelError
from seaway.packaging.flavors.base import (
    Flavor,
    LoadContext,
    Predictor,
    SavedModel,
    SaveOptions,
    require,
)

MODEL_FILE = "model.pt"
NUMPY_FLOATS = ("float16", "float32", "float64")


def _torch() -> ModuleType:
    return require("torch", package="torch", extra="torch", purpose="The PyTorch flavor")


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[None]:
    """Evaluate in eval mode, then give the caller's module back in the mode it was in."""
    was_training = bool(module.training)
    if was_training:
        module.eval()
    try:
        yield
    finally:
        if was_training:
            module.train()


class TorchPredictor:
    """A module behind ``predict(numpy)``; float inputs are cast to the module's float dtype."""

    def __init__(self, torch: ModuleType, module: Any, float_dtype: str | None) -> None:
        self._torch = torch
        self._module = module
        self._float_dtype = float_dtype

    def predict(self, data: Any) -> Any:
        inputs = to_tensors(self._torch, data, self._float_dtype)
        with self._torch.inference_mode(), eval_mode(self._module):
            return to_numpy(self._torch, self._module(*inputs))


class TorchFlavor(Flavor):
    name = "torch"
    extra = "torch"

    def matches(self, model: Any) -> bool:
        return any(
            cls.__name__ == "Module" and cls.__module__ == "torch.nn.modules.module"
            for cls in type(model).__mro__
        )

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        torch = _torch()
        float_dtype = module_float_dtype(model)
        with eval_mode(model), quiet_jit():
            if isinstance(model, torch.jit.ScriptModule):
                compiled, method = model, "torchscript"
            else:
                compiled, method = _compile(torch, model, options.sample_input, float_dtype)
            torch.jit.save(compiled, str(model_dir / MODEL_FILE))
        return SavedModel(
            framework="torch",
            framework_version=str(torch.__version__),
            requirements=("torch", "numpy"),
            options={"file": MODEL_FILE, "method": method, "float_dtype": float_dtype},
        )

    def wrap(self, model: Any) -> Predictor:
        return TorchPredictor(_torch(), model, module_float_dtype(model))

    def load(self, context: LoadContext) -> Predictor:
        torch = _torch()
        path = context.model_dir / context.options.get("file", MODEL_FILE)
        try:
            with quiet_jit():
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # RuntimeError from the TorchScript deserializer
            raise ModelLoadError(
                f"torch {torch.__version__} failed to load the TorchScript file {path}: {exc}. "
                "Install the torch version in the package's requirements.txt"
            ) from exc
        module.eval()
        return TorchPredictor(torch, module, context.options.get("float_dtype"))


def _compile(
    torch: ModuleType, model: Any, sample: Any, float_dtype: str | None
) -> tuple[Any, str]:
    name = type(model).__qualname__
    try:
        return torch.jit.script(model), "script"
    except Exception as exc:  # torch.jit.frontend errors, RuntimeError
        script_error = _first_line(exc)
    if sample is None:
        raise UnsupportedModelError(
            f"TorchScript cannot compile {name} ({script_error}), and tracing it needs an example "
            "input: pass sample_input= to save_model, or make forward() scriptable"
        )
    try:
        return torch.jit.trace(model, to_tensors(torch, sample, float_dtype)), "trace"
    except Exception as exc:
        raise UnsupportedModelError(
            f"{name} can be neither scripted ({script_error}) nor traced with the sample input "
            f"({_first_line(exc)}); make forward() scriptable or take tensors only"
        ) from exc


def module_float_dtype(module: Any) -> str | None:
    """The numpy name of the first floating parameter's dtype, which inputs are cast to."""
    tensors = [*module.parameters(), *module.buffers()]
    for tensor in tensors:
        if tensor.is_floating_point():
            name = str(tensor.dtype).removeprefix("torch.")
            return name if name in NUMPY_FLOATS else None
    return None


def to_tensors(torch: ModuleType, data: Any, float_dtype: str | None) -> tuple[Any, ...]:
    """Positional arguments for ``forward``: a dict's values in order, else one tensor."""
    if isinstance(data, Mapping):
        return tuple(_tensor(torch, value, str(key), float_dtype) for key, value in data.items())
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy(dtype=float_dtype or "float32")
    return (_tensor(torch, data, "input", float_dtype),)


def _tensor(torch: ModuleType, value: Any, name: str, float_dtype: str | None) -> Any:
    if isinstance(value, torch.Tensor):
        return value
    array = np.ascontiguousarray(value)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"input {name!r} has dtype {array.dtype}; PyTorch models take numeric arrays"
        )
    if float_dtype is not None and array.dtype.kind == "f" and array.dtype != float_dtype:
        array = array.astype(float_dtype)
    if not array.flags.writeable:  # torch warns on read-only memory, and would share it
        array = array.copy()
    return torch.from_numpy(array)


def to_numpy(torch: ModuleType, output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, tuple | list):
        return tuple(to_numpy(torch, part) for part in output)
    if isinstance(output, Mapping):
        return {key: to_numpy(torch, value) for key, value in output.items()}
    return output


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
