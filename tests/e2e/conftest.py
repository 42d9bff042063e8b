"""The docs-examples summary: how many documented blocks ran and which are marked not-run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import sys

    module = sys.modules.get("docs_examples")
    if module is None or not (module.TALLY["ran"] or module.TALLY["not_run"]):
        return
    tally = module.TALLY
    ran = sorted(set(tally["ran"]))
    write = terminalreporter.write_line
    terminalreporter.section("documentation examples")
    write(f"{len(ran)} blocks ran ({len(set(tally['commands']))} shell commands)")
    not_run = list(dict.fromkeys(tally["not_run"]))  # in page order, once each
    write(f"{len(not_run)} blocks marked not-run:")
    for item in not_run:
        write(f"  {item}")
    skipped = list(dict.fromkeys(tally["skipped_commands"]))
    write(f"{len(skipped)} shell commands marked not-run: {', '.join(skipped)}")
