"""Schemathesis over the running server's own ``/openapi.json``: no request, valid or not, gets a
5xx. Fixed seed (hypothesis derandomized) and a bounded number of examples per operation and
generation mode, so every run sends the same requests and the test stays short.

Generated model names would all be unknown (404 before the body is read), so most cases are
pointed at the served models: ``fraud`` (a scikit-learn dataframe model) and ``echo`` (a Python
model over every datatype), with version ``1``; the rest keep their generated names.
"""

from __future__ import annotations

import time
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from servers import Server

#: Examples per operation and generation mode (15 operations, 2 modes).
EXAMPLES = 25
MODELS = ("fraud", "echo", None)  # None: keep the generated name


def test_no_request_gets_a_server_error(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    turn = [0]
    skipped: list[str] = []
    started = time.monotonic()

    def send(case: schemathesis.Case) -> None:
        turn[0] += 1
        if "name" in (case.path_parameters or {}):
            chosen = MODELS[turn[0] % len(MODELS)]
            if chosen is not None:
                case.path_parameters["name"] = chosen
                if "version" in case.path_parameters:
                    case.path_parameters["version"] = "1"
        response = case.call(base_url=server.url, timeout=30)
        statuses[response.status_code] += 1
        if response.status_code >= 500 and len(failures) < 20:
            failures.append(
                f"{response.status_code} {case.method} {case.formatted_path} "
                f"body={str(case.body)[:200]!r} headers={case.headers} -> {response.text[:200]}"
            )

    # repository load/unload change what every later case is sent to (an unloaded model makes
    # /ping a rightful 503): they have their own tests (test_hot_swap.py)
    operations = [
        operation
        for result in schema.get_all_operations()
        if "/v2/repository/models/" not in (operation := result.ok()).path
    ]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = settings(
                max_examples=EXAMPLES,
                derandomize=True,  # the fixed seed: the same cases every run
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(operation.as_strategy(generation_mode=mode))(send))
            try:
                run()
            except Unsatisfiable:
                # an operation with nothing to get wrong (no parameters, no body) has no
                # negative cases
                assert mode is GenerationMode.NEGATIVE, operation.label
                skipped.append(operation.label)

    sent = sum(statuses.values())
    print(
        f"\nfuzz: {len(operations)} operations, {sent} requests in "
        f"{time.monotonic() - started:.1f} s; by status: {dict(sorted(statuses.items()))}; "
        f"{len(skipped)} operations have no negative cases"
    )
    assert sent >= len(operations) * 2
    assert not failures, "server errors:\n" + "\n".join(failures) + "\n" + server.output()[-3000:]
