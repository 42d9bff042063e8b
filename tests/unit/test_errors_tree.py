"""The one exception tree: every error class lives in seaway/errors.py and its docstring draws
each one under its real parent, so the drawing cannot drift from the code."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import seaway
from seaway import errors

PACKAGE = Path(seaway.__file__).parent

#: Exceptions that never reach a user, each raised and caught within one module: internal
#: signals, not errors, so they stay beside the code that uses them.
INTERNAL = {
    ("serving/http/body.py", "ClientDisconnected"): "the client left: nobody to answer",
    ("runtime/spawner.py", "SpawnerError"): "no zygote: the caller falls back to spawn",
    ("batch/ray_engine.py", "RemoteTraceback"): "carries an actor's traceback as __cause__",
    ("routing/rules.py", "FieldProblem"): "a spec validator's refusal: pydantic carries it to "
    "parse_spec, which reports it as InvalidInputError naming the field",
    ("monitoring/compact.py", "_Left"): "an hour compaction leaves alone: counted, never raised "
    "to a caller",
}
_BASE_NAMES = re.compile(r"(Error|Exception|Interrupt|Warning)$")


def _exception_classes(path: Path) -> list[str]:
    """Classes whose name or a base's name reads as an exception (a static look: no imports)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
        if _BASE_NAMES.search(node.name) or any(_BASE_NAMES.search(b) for b in bases):
            found.append(node.name)
    return found


def test_every_exception_class_is_defined_in_errors_py() -> None:
    outside = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "errors.py" or "/grpc/inference_pb2" in relative:
            continue
        for name in _exception_classes(path):
            if (relative, name) not in INTERNAL:
                outside[name] = relative
    assert outside == {}, "define these in seaway/errors.py and draw them in its tree"


def _drawn_parents() -> dict[str, str]:
    """``{class: parent}`` as the docstring's trees draw them: a tree's lines are indented four
    spaces, a root starts right there, and each ``├──``/``└──`` level is four columns deeper."""
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        if not line.startswith("    "):
            continue
        drawn = line[4:]
        if branch := re.match(r"([│ ]*)[├└]── (\w+)", drawn):
            depth = len(branch.group(1)) // 4 + 1
            name = branch.group(2)
        elif root := re.match(r"([A-Z]\w+)", drawn):
            depth, name = 0, root.group(1)
        else:
            continue  # a description running on
        del stack[depth:]
        if stack:
            parents[name] = stack[-1]
        stack.append(name)
    return parents


def test_the_docstring_draws_every_error_under_its_real_parent() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
        and cls is not errors.SeawayError
    }
    drawn = _drawn_parents()
    missing = sorted(set(classes) - set(drawn))
    assert missing == [], "draw these in the tree of seaway/errors.py"
    wrong = {
        name: (drawn[name], cls.__bases__[0].__name__)
        for name, cls in classes.items()
        if drawn[name] != cls.__bases__[0].__name__
    }
    assert wrong == {}, "drawn parent vs real first base"


def test_cancellation_unwinds_as_ctrl_c_does() -> None:
    # every `except Exception` on a job's path lets it through, as it does Ctrl-C
    assert issubclass(errors.JobCancelledError, KeyboardInterrupt)
    assert not issubclass(errors.JobCancelledError, Exception)
