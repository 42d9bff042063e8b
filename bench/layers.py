"""Where a Seaway server's time goes per request: py-spy samples grouped by layer.

``bench/serving.py --profile DIR`` records the server process (and its replicas) with
``py-spy record --format raw`` during the measurement at the highest concurrency, then prints the
server process's samples grouped into the layers below, each also as microseconds per request (the
layer's share times the server core's CPU per request). Install py-spy with
``.venv/bin/pip install py-spy``. Sampling runs on the load generator's core, so profiled figures
are slightly lower than unprofiled ones.

Read the shares as approximate, and only for a saturated server (the c=64 cells):

- py-spy counts a thread that is runnable but not running as busy, so the time the server waits
  for the core while its replica (on the same core) predicts lands under "replica hop", which
  thus also holds much of the model's own time;
- an idle server waits in the event loop, which counts as "event loop" here (at c=1 that is most
  samples: use ``bench/hotpath.py`` for the single-request path instead);
- garbage collection has no frame of its own: its pauses land on whatever frame was allocating.

Also runnable on a saved file: ``python bench/layers.py FILE [US_PER_REQUEST]``.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: (layer, pattern over a frame); a sample goes to the first layer matched walking from its leaf
LAYERS = [
    (
        "replica hop (pipe, pickle, and the replica's turns on the core)",
        r"multiprocessing/|seaway/runtime/replica\.py",
    ),
    (
        "V2 JSON decode (protocol/rest.py)",
        r"decode_infer_request|_from_json|_input \(|_requested_outputs|_parameters \(|_load_json"
        r"|_hides_booleans|_no_duplicates",
    ),
    ("V2 JSON encode (rest.py, output_tensors)", r"encode_infer_response|output_tensors|_to_json"),
    ("signature coerce (native_inputs)", r"native_inputs|seaway/packaging/signature\.py"),
    (
        "data plane, batcher, pool (+ asyncio timeout, wait_for, locks)",
        r"seaway/serving/dataplane\.py|seaway/runtime/batcher\.py|seaway/runtime/pool\.py"
        r"|seaway/serving/model\.py|seaway/runtime/deadlines\.py|asyncio/timeouts\.py|asyncio/tasks\.py"
        r"|asyncio/locks\.py",
    ),
    (
        "Seaway HTTP adapter (guard, request id, metrics, read_body)",
        r"seaway/serving/http/|seaway/serving/logs\.py|seaway/serving/metrics\.py"
        r"|prometheus_client|uuid\.py",
    ),
    ("Starlette (middleware, routing, Request, Response)", r"starlette/"),
    ("uvicorn HTTP protocol (httptools callbacks, ASGI glue)", r"uvicorn/"),
    ("event loop and socket I/O", r"asyncio/|selectors\.py|uvloop"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in LAYERS]


def record(pid: int, seconds: int, out: Path, core: int) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [
        "taskset", "-c", str(core), py_spy, "record", "--pid", str(pid), "--duration",
        str(seconds), "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def available() -> bool:
    return bool(shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists())


def layers(path: Path) -> tuple[int, list[tuple[str, int]]]:
    """(samples, [(layer, samples)] most first) of a py-spy raw (collapsed stacks) file."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        samples = int(number)
        total += samples
        for frame in reversed(frames):
            hit = next((name for name, rx in _COMPILED if rx.search(frame)), None)
            if hit is not None:
                counts[hit] += samples
                break
        else:
            counts["other"] += samples
    return total, counts.most_common()


def report(path: Path, us_per_request: float | None = None) -> str:
    total, found = layers(path)
    lines = [f"{path.name}: {total} samples"]
    for name, samples in found:
        share = samples / total if total else 0.0
        cost = f"{share * us_per_request:6.0f} us/req  " if us_per_request else ""
        lines.append(f"  {share:6.1%}  {cost}{name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else None))
