"""Request ids: the client's when sane, else fresh ones that no seeding or forking repeats."""

from __future__ import annotations

import os
import random
import re

from seaway.serving.logs import new_request_id


def test_a_sane_client_id_is_kept_and_a_bad_one_replaced() -> None:
    assert new_request_id("order-42.retry_1") == "order-42.retry_1"
    for bad in (None, "", "has space", "x" * 500, "tab\there"):
        generated = new_request_id(bad)
        assert re.fullmatch(r"[0-9a-f]{32}", generated), generated


def test_generated_ids_differ_even_after_random_seed() -> None:
    random.seed(0)
    first = new_request_id(None)
    random.seed(0)
    second = new_request_id(None)
    assert first != second
    assert len({new_request_id(None) for _ in range(10_000)}) == 10_000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, new_request_id(None).encode())
        os._exit(0)
    os.close(write_end)
    parent = new_request_id(None)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child) and child != parent
