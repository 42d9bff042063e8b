"""What the benchmarks print and record about the machine they ran on."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import platform
from pathlib import Path
from typing import Any


def describe(*packages: str) -> dict[str, Any]:
    """Date, CPU, cores, memory, load, Python, kernel, and the versions of ``packages``."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory / 1024**3, 1),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    for name in packages:
        info[name] = importlib.import_module(name).__version__
    return info
