"""Start and stop real `seaway serve` processes on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    grpc_port: int
    log: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text()


def start_server(
    args: list[str],
    home: Path,
    log: Path,
    *,
    wait_ready: bool = True,
    log_format: str = "text",
    scheme: str = "http",
    verify: Any = True,
    env: dict[str, str] | None = None,
) -> Server:
    """``scheme="https"`` (with ``verify``, a CA file) waits for readiness over TLS; ``env`` adds
    variables to the server's environment."""
    port, grpc_port = free_port(), free_port()
    env = {**os.environ, **(env or {}), "SEAWAY_HOME": str(home)}
    handle = log.open("w")
    command = [sys.executable, "-m", "seaway", "serve", *args, "--port", str(port)]
    command += ["--grpc-port", str(grpc_port), "--log-format", log_format]
    process = subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    server = Server(process, port, grpc_port, log, scheme)
    if wait_ready:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
            try:
                ready = httpx.get(f"{server.url}/v2/health/ready", timeout=2, verify=verify)
                if ready.status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        server.stop(signal.SIGKILL)
        raise AssertionError(f"server not ready in time:\n{server.output()}")
    return server


def replica_pids(pid: int) -> list[int]:
    """Replica processes of a server: the children of its replica zygote (seaway/runtime/
    spawner.py), or its spawned children (``SEAWAY_REPLICA_START=spawn``; not multiprocessing's
    resource tracker)."""
    replicas = []
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except FileNotFoundError:  # exited meanwhile
            continue
        if b"seaway.runtime.zygote" in cmdline:
            replicas.extend(_children(child))
        elif b"spawn_main" in cmdline:
            replicas.append(child)
    return replicas


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []
