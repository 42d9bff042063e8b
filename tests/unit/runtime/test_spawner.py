"""The replica zygote: children forked on request, their exit codes, pipes, environment, and what
happens when the zygote dies or cannot start. Tiny targets, a zygote that preloads nothing heavy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from seaway.runtime import spawner as spawner_module
from seaway.runtime.spawner import ForkedProcess, Spawner
from seaway.runtime.zygote import FLAVOR_PRELOAD, flavor_of, preload

pytestmark = pytest.mark.timeout(120)


def exit_with(code: int) -> None:
    os._exit(code)


def raise_error() -> None:
    raise ValueError("boom")


def sleep_forever() -> None:
    time.sleep(600)


def report(outbox: Connection, name: str) -> None:
    """Sends back what the child sees: its pid, an environment variable, its directory."""
    outbox.send((os.getpid(), os.environ.get(name), os.getcwd()))


def announce_then_sleep(outbox: Connection) -> None:
    outbox.send("running")
    time.sleep(600)


def echo(inbox: Connection, outbox: Connection) -> None:
    outbox.send(inbox.recv())


@pytest.fixture(scope="module")
def spawner() -> Iterator[Spawner]:
    zygote = Spawner(preload=("json",))
    yield zygote
    zygote.close()


def started(spawner: Spawner, target: object, *args: object) -> ForkedProcess:
    process = spawner.process(target, args)  # type: ignore[arg-type]
    process.start()
    return process


def test_exit_codes_reach_the_parent(spawner: Spawner) -> None:
    process = started(spawner, exit_with, 3)
    assert process.pid is not None and process.pid != spawner.zygote_pid
    process.join(60)
    assert process.exitcode == 3 and not process.is_alive()
    failing = started(spawner, raise_error)
    failing.join(60)
    assert failing.exitcode == 1


def test_a_sigkill_is_told_apart_from_a_crash(spawner: Spawner) -> None:
    process = started(spawner, sleep_forever)
    assert process.is_alive() and process.exitcode is None
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(60)
    assert process.exitcode == -signal.SIGKILL


def test_connections_travel_as_pipes(spawner: Spawner) -> None:
    child_in, to_child = Pipe(duplex=False)
    from_child, child_out = Pipe(duplex=False)
    process = started(spawner, echo, child_in, child_out)
    child_in.close()
    child_out.close()
    to_child.send({"rows": [1, 2]})
    assert from_child.poll(60)
    assert from_child.recv() == {"rows": [1, 2]}
    process.join(60)
    assert process.exitcode == 0


def test_children_see_the_parents_environment_of_now(
    spawner: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner.start()  # the zygote runs before the variable is set, as in a server
    monkeypatch.setenv("SEAWAY_TEST_SPAWNER", "now")
    monkeypatch.chdir(tmp_path)
    receive, send = Pipe(duplex=False)
    process = started(spawner, report, send, "SEAWAY_TEST_SPAWNER")
    send.close()
    assert receive.poll(60)
    pid, value, cwd = receive.recv()
    assert (pid, value, Path(cwd)) == (process.pid, "now", tmp_path)
    process.join(60)


def test_a_dead_zygote_is_restarted(spawner: Spawner) -> None:
    spawner.start()
    old = spawner.zygote_pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    process = started(spawner, exit_with, 4)
    process.join(60)
    assert process.exitcode == 4
    assert spawner.zygote_pid not in (None, old) and spawner.restarts >= 1


def test_without_a_zygote_the_process_is_spawned(caplog: pytest.LogCaptureFixture) -> None:
    broken = Spawner(executable="/nonexistent/python")
    process = broken.process(exit_with, (5,))
    process.start()
    process.join(60)
    assert process.exitcode == 5
    assert "by spawn instead" in caplog.text


def test_closing_the_spawner_stops_its_children() -> None:
    own = Spawner(preload=())
    process = started(own, sleep_forever)
    own.close()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL


def test_a_cancelled_launch_leaves_no_process(spawner: Spawner) -> None:
    process = spawner.process(sleep_forever)

    async def main() -> None:
        task = asyncio.ensure_future(process.launch())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    process.join(60)
    assert process.pid is not None and process.exitcode == -signal.SIGKILL


def test_spawn_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spawner_module.START_ENV, "spawn")
    process = spawner_module.process(exit_with, (6,))
    process.start()
    process.join(60)
    assert process.exitcode == 6 and process._spawned is not None


@pytest.mark.skipif(sys.platform != "linux", reason="the zygote is Linux-only")
def test_replicas_use_the_zygote_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(spawner_module.START_ENV, raising=False)
    process = spawner_module.process(exit_with, (0,))
    assert process._spawner is spawner_module.default_spawner()


def test_flavor_of_reads_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"flavor": "xgboost"}))
    assert flavor_of(str(tmp_path)) == "xgboost"
    assert flavor_of(str(tmp_path / "missing")) is None
    (tmp_path / "manifest.json").write_text("not json")
    assert flavor_of(str(tmp_path)) is None


def test_preload_reports_what_it_could_not_import() -> None:
    assert preload(["json", "seaway_no_such_module", "json:no_such_function"]) == [
        "seaway_no_such_module",
        "json:no_such_function",
    ]


def test_start_early_preloads_the_served_flavors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.preloads: list[list[str]] = []

        def start(self, also: list[str]) -> None:
            self.preloads.append(list(also))

    recorder = Recorder()
    monkeypatch.setattr(spawner_module, "default_spawner", lambda: recorder)
    monkeypatch.setattr(spawner_module.sys, "platform", "linux")
    monkeypatch.delenv(spawner_module.START_ENV, raising=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"flavor": "lightgbm"}))
    spawner_module.start_early([str(tmp_path)])
    spawner_module.start_early([str(tmp_path), "models:/fraud@production"])  # flavor unknown yet
    sklearn = list(FLAVOR_PRELOAD["sklearn"])
    assert recorder.preloads == [["lightgbm"], ["lightgbm", *sklearn]]
    monkeypatch.setenv(spawner_module.START_ENV, "spawn")
    spawner_module.start_early([str(tmp_path)])
    assert len(recorder.preloads) == 2


def test_children_carry_their_name_and_the_zygote_ignores_sigterm(spawner: Spawner) -> None:
    receive, send = Pipe(duplex=False)
    process = spawner.process(announce_then_sleep, (send,), name="seaway-replica-7")
    process.start()
    send.close()
    assert process.pid is not None and receive.poll(60) and receive.recv() == "running"
    assert Path(f"/proc/{process.pid}/comm").read_text().strip() == "replica-7"
    zygote, restarts = spawner.zygote_pid, spawner.restarts
    assert zygote is not None
    os.kill(zygote, signal.SIGTERM)  # the server's to handle, not the zygote's
    answer = started(spawner, exit_with, 8)
    answer.join(60)
    assert answer.exitcode == 8
    assert (spawner.zygote_pid, spawner.restarts) == (zygote, restarts)  # the same zygote
    os.kill(process.pid, signal.SIGKILL)
    process.join(60)


def has_module(outbox: Connection, name: str) -> None:
    outbox.send(name in sys.modules)


def test_a_running_zygote_preloads_what_it_is_told(spawner: Spawner) -> None:
    spawner.start()
    spawner.start(also=["colorsys"])  # running: told at once, before the next fork
    receive, send = Pipe(duplex=False)
    process = started(spawner, has_module, send, "colorsys")
    send.close()
    assert receive.poll(60) and receive.recv() is True
    process.join(60)
    assert "colorsys" in spawner.preload
