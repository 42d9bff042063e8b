"""Extract the code examples of README.md and docs/*.md and run them as a user would.

Used by ``test_docs_examples.py``. Every fenced block with a language is an example:

- ``python``: written to a file (named by a first line such as ``# recommend.py``, else
  ``example_L<line>.py``) and run as a script (``python FILE``), since a ``PythonModel`` defined in
  ``__main__`` is packaged from its source file;
- ``bash``: every line that is not a comment is a command; ``console``: every ``$ `` line is one,
  the lines after it being its output (not checked). A command goes on over lines while a quote is
  open or a line ends with ``\\``. Each runs with ``bash -eo pipefail`` and must exit 0; ``curl``
  gets ``--fail-with-body`` so an HTTP error fails it too. Documented output that is JSON must
  match the real output's shape (the same keys; values differ with the model); other output is
  not checked;
- ``yaml``: loaded by the checker the page's test gives (a config file is validated, not run).

The blocks of one page run in order in one folder with its own ``SEAWAY_HOME`` (``.seaway``
there, the documented default), so a block may use what an earlier one made. Long-running
commands (``seaway serve``, ``seaway scheduler``) start in the background, a server is waited
for (``/v2/health/ready``), and all are stopped when the page ends. The documented ports are
rewritten to free ones: each ``seaway serve`` gets its own (``--port 8080``/``--grpc-port 8081``
become free ports, added when not given), and ``localhost:8080`` in later commands and Python
blocks, like ``SEAWAY_URL`` (``seaway predict``'s default), then name the newest server. A new
server for a documented port stops the previous one, as a user would have to. ``127.0.0.1:9000``
is the documented port of a helper an example runs itself (a webhook receiver): it becomes a free
port of the page's in every block, YAML included (a serve config names the receiver).

What cannot run here is marked in the Markdown, right before the block (blank lines allowed),
with an HTML comment that the rendered page hides and this module counts:

- ``<!-- not-run: REASON -->``: the whole block;
- ``<!-- not-run-command "PREFIX": REASON -->``: the block's shell commands that start with
  PREFIX (several such lines may precede a block).

A block with neither a way to run nor a marker fails the inventory test; a marker that is not
followed by a block, or that matches no command, fails too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = ("bash", "console")
RUNNABLE = ("python", *SHELL, "yaml")
DOC_HTTP_PORT, DOC_GRPC_PORT, DOC_HELPER_PORT = 8080, 8081, 9000

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(.+?)\s*-->\s*$")
_NOT_RUN_COMMAND = re.compile(r'^\s*<!--\s*not-run-command\s+"([^"]+)":\s*(.+?)\s*-->\s*$')
_SCRIPT_NAME = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_]*\.py)\b")
_BACKGROUND = re.compile(r"^\s*seaway\s+(serve|scheduler)\b")

#: what ran, for the summary at the end of the session (tests/e2e/conftest.py prints it)
TALLY: dict[str, list[str]] = {"ran": [], "commands": [], "not_run": [], "skipped_commands": []}


class MarkerError(Exception):
    """A not-run marker that is not right before a block."""


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository: "docs/serving.md"
    line: int  # the opening fence's line, 1-based
    lang: str
    text: str
    not_run: str | None = None
    skip_commands: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def extract(path: Path, page: str | None = None) -> list[Block]:
    """The fenced blocks of one Markdown file, with the markers before them."""
    page = page or path.relative_to(REPO).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    not_run: str | None = None
    skips: list[tuple[str, str]] = []
    marker_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            indent, lang, start = fence.group(1), fence.group(2), i + 1
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            text = "\n".join(body) + "\n"
            blocks.append(Block(page, start, lang, text, not_run, tuple(skips)))
            not_run, skips, marker_line = None, [], 0
        elif match := _NOT_RUN.match(line):
            not_run, marker_line = match.group(1), i + 1
        elif match := _NOT_RUN_COMMAND.match(line):
            skips.append((match.group(1), match.group(2)))
            marker_line = i + 1
        elif line.strip() and (not_run or skips):
            raise MarkerError(
                f"{page}:{marker_line}: a not-run marker must come right before a block"
            )
        i += 1
    if not_run or skips:
        raise MarkerError(f"{page}:{marker_line}: a not-run marker with no block after it")
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOC_FILES for block in extract(path)]


# --- shell commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str
    line: int  # in the Markdown file
    skipped: str | None = None  # the not-run reason
    output: str = ""  # what a console block shows after it


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, joined over continuation lines, with their markers."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if block.lang == "console":
            starts = line.startswith("$ ")
            text = line[2:]
        else:
            starts = bool(line.strip()) and not line.lstrip().startswith("#")
            text = line
        if not starts:
            i += 1
            continue
        first = i
        while not _complete(text) and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        if not _complete(text):
            raise AssertionError(f"{block.page}:{block.line + 1 + first}: unfinished command")
        reason = next(
            (why for prefix, why in block.skip_commands if text.lstrip().startswith(prefix)), None
        )
        i += 1
        output: list[str] = []
        while block.lang == "console" and i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        found.append(Command(text, block.line + 1 + first, reason, "\n".join(output).strip()))
    for prefix, _ in block.skip_commands:
        if not any(c.text.lstrip().startswith(prefix) for c in found):
            raise MarkerError(f"{block.id}: not-run-command {prefix!r} matches no command")
    return found


def _shape(value: object) -> object:
    """A JSON value's structure without its values: keys of objects, the first item of lists."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def check_output(command: Command, stdout: str) -> str | None:
    """What differs between a command's documented JSON output and its real one, loosely: the
    same keys at every level (values depend on the model, ids and times differ). Output that is
    not JSON is not checked: running the command is the point."""
    try:
        documented = [json.loads(line) for line in command.output.splitlines()]
    except ValueError:
        return None
    if not documented:
        return None
    try:
        actual = [json.loads(line) for line in stdout.strip().splitlines()]
    except ValueError:
        return f"documented JSON output, got {stdout.strip()[:500]!r}"
    if [_shape(v) for v in actual] != [_shape(v) for v in documented]:
        return (
            f"output {stdout.strip()[:500]!r} is not shaped like the documented {command.output!r}"
        )
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- one page ------------------------------------------------------------------------------------


@dataclass
class _Background:
    command: str
    process: subprocess.Popen[bytes]
    log: Path
    doc_port: int | None  # the documented HTTP port it stands for (servers)


@dataclass
class PageRun:
    """One page's folder, environment and background processes; blocks run in order."""

    page: str
    folder: Path
    yaml_check: Callable[[str, Path], None] | None = None
    python_prelude: str = ""
    rewrites: Mapping[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    ports: dict[str, str] = field(default_factory=dict)  # "localhost:8080" -> "localhost:P"
    background: list[_Background] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ports[f"127.0.0.1:{DOC_HELPER_PORT}"] = f"127.0.0.1:{free_port()}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWAY_")}
        env["SEAWAY_HOME"] = str(self.folder / ".seaway")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["COLUMNS"] = "200"
        if "localhost:8080" in self.ports:
            env["SEAWAY_URL"] = f"http://{self.ports['localhost:8080']}"
        return env

    def _rewrite(self, text: str, shell: bool) -> str:
        """The documented ports as the page's servers have them; made-up ids (shell only)."""
        for old, new in {**(self.rewrites if shell else {}), **self.ports}.items():
            text = text.replace(old, new)
        return text

    def run(self, block: Block) -> None:
        if block.lang == "python":
            self._python(block)
        elif block.lang in SHELL:
            for command in commands(block):
                if command.skipped:
                    TALLY["skipped_commands"].append(f"{block.page}:{command.line}")
                    continue
                self._shell(command, block)
                TALLY["commands"].append(f"{block.page}:{command.line}")
        elif block.lang == "yaml":
            if self.yaml_check is None:
                raise AssertionError(f"{block.id}: no check for this page's yaml blocks")
            self.yaml_check(self._rewrite(block.text, shell=False), self.folder)
        else:
            raise AssertionError(f"{block.id}: no way to run a {block.lang!r} block")
        self._check_background(block)
        TALLY["ran"].append(block.id)

    def _python(self, block: Block) -> None:
        first = block.text.splitlines()[0] if block.text.strip() else ""
        named = _SCRIPT_NAME.match(first)
        script = self.folder / (named.group(1) if named else f"example_L{block.line}.py")
        script.write_text(
            self.python_prelude + self._rewrite(block.text, shell=False), encoding="utf-8"
        )
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.id}: python {script.name} exited {done.returncode}\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
            )

    def _shell(self, command: Command, block: Block) -> None:
        text = self._rewrite(command.text, shell=True)
        if _BACKGROUND.match(text) and "--once" not in text:
            self._start(text, command)
            return
        text = re.sub(r"(^|\s|\()curl\s", r"\1curl --fail-with-body ", text)
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", text],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.page}:{command.line}: `{text}` exited {done.returncode}\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        if problem := check_output(command, done.stdout):
            raise AssertionError(f"{block.page}:{command.line}: `{text}`: {problem}")

    def _start(self, text: str, command: Command) -> None:
        doc_port: int | None = None
        if re.match(r"^\s*seaway\s+serve\b", text):
            given = re.search(r"--port\s+(\d+)", text)
            doc_port = int(given.group(1)) if given else DOC_HTTP_PORT
            for old in [b for b in self.background if b.doc_port == doc_port]:
                self._stop(old)  # the documented port is taken: the user stops the old one
                self.background.remove(old)
            http, grpc = free_port(), free_port()
            flags = {"--port": (DOC_HTTP_PORT, http), "--grpc-port": (DOC_GRPC_PORT, grpc)}
            for flag, (_, port) in flags.items():
                if re.search(rf"{flag}\s+\d+", text):
                    text = re.sub(rf"{flag}\s+\d+", f"{flag} {port}", text)
                else:
                    text = text.split("#")[0].rstrip() + f" {flag} {port}"
        log = self.folder / f"background-L{command.line}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {text}"],
                cwd=self.folder,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = _Background(text, process, log, doc_port)
        self.background.append(started)
        if doc_port is not None:
            self._wait_ready(started, http)
            self.ports[f"localhost:{doc_port}"] = f"localhost:{http}"

    def _wait_ready(self, server: _Background, port: int) -> None:
        deadline = time.monotonic() + 180
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(
                    f"`{server.command}` exited {server.process.returncode} before it was ready\n"
                    + server.log.read_text(errors="replace")[-4000:]
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)  # polling a readiness probe, not standing in for an event
        raise AssertionError(f"`{server.command}` was not ready within 180 s")

    def _check_background(self, block: Block) -> None:
        for item in self.background:
            if item.process.poll() is not None:
                raise AssertionError(
                    f"{block.id}: `{item.command}` stopped (exit {item.process.returncode})\n"
                    + item.log.read_text(errors="replace")[-4000:]
                )

    @staticmethod
    def _stop(item: _Background) -> None:
        if item.process.poll() is None:
            item.process.send_signal(signal.SIGTERM)
            try:
                item.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(item.process.pid, signal.SIGKILL)
                item.process.wait(timeout=30)

    def close(self) -> None:
        for item in self.background:
            self._stop(item)
        self.background.clear()
