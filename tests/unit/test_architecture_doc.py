"""docs/architecture.md walks one request through the code, naming files and functions: every one
it names must exist, so the walk cannot drift from the code it describes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import seaway

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(seaway.__file__).parent
#: names in the walk that are not Seaway's own code (uvicorn's, the kernel's, wire formats)
NOT_CODE = {"SO_REUSEPORT", "predict", "ok", "error"}


def _walk() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    start = text.index("## One V2 REST request, from the socket to the replica and back")
    return text[start : text.index("\n## ", start + 3)]


def _definitions() -> tuple[set[str], set[str]]:
    """Every function and class name in the package, and every ``Class.member``."""
    names: set[str] = set()
    members: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for item in ast.walk(node):
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        members.add(f"{node.name}.{item.name}")
                    elif isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store):
                        names.add(item.attr)  # self._run_batch = ...: a callable attribute
    return names, members


def test_every_file_the_walk_names_exists() -> None:
    paths = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)", _walk()))
    assert paths, "the walk names no file"
    missing = sorted(p for p in paths if not (PACKAGE / p).is_file())
    assert missing == []


def test_every_function_the_walk_names_exists() -> None:
    names, members = _definitions()
    named = set()
    for token in re.findall(r"`([^`]+)`", _walk()):
        for part in re.split(r"\s*(?:->|:)\s*", token):
            # `rest.decode_infer_request`: a module's function; `Replica.call`: a class's method
            code = re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?", part)
            if code and not part.endswith(".py") and part not in NOT_CODE:
                named.add(part)
    assert len(named) > 40
    unknown = sorted(
        name
        for name in named
        if name not in names
        and name not in members
        and name.rsplit(".", 1)[-1] not in names  # module.function
    )
    assert unknown == []


def test_the_drawing_shows_nothing_unbuilt() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    drawing = text[text.index("```", text.index("## What runs")) :]
    drawing = drawing[: drawing.index("```", 3)]
    for planned in ("monitor", "prediction log", "router", "rollout"):
        assert planned not in drawing.lower()
