"""--help shows help strings as written: Rich markup would swallow "[default: 64]" or a
"seaway[extra]" hint, and a docstring's line breaks would break lines mid-sentence."""

from __future__ import annotations

import pytest

from seaway.cli.main import main


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "250")
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())  # the words, whatever the wrapping


def test_bracketed_text_in_option_help_is_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help(capsys, monkeypatch, "serve")
    assert "turns batching off [default: 64]." in text
    drift = _help(capsys, monkeypatch, "monitor", "drift")
    assert "alias [default: the newest version logged in the window]" in drift


def test_a_command_docstring_wraps_as_one_paragraph(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scheduler = [line for line in lines if "scheduler" in line]
    assert scheduler and "interrupts it" in scheduler[0]  # one line on a wide terminal
