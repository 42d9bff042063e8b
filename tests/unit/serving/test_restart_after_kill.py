"""A server killed with connections open leaves them in TIME_WAIT on its port for a minute; the
port is free all the same, and ``seaway serve`` must take it again at once (a supervisor restarting
a crashed server got "Address already in use; the port is taken" for a minute)."""

from __future__ import annotations

import socket
import time

import pytest

from seaway.errors import ServingError
from seaway.serving.workers import check_port


def _time_wait_port() -> int:
    """A port whose listener is gone and whose server side of a connection is in TIME_WAIT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = int(listener.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first: its side ends in TIME_WAIT
    client.recv(1)  # the server's FIN
    client.close()
    listener.close()
    return port


def test_a_port_left_in_time_wait_by_a_killed_server_can_be_taken_again() -> None:
    port = _time_wait_port()
    for _ in range(100):  # the kernel moves the socket to TIME_WAIT as the FINs cross
        with socket.socket() as plain:
            try:
                plain.bind(("127.0.0.1", port))
            except OSError:
                break  # a bind without SO_REUSEADDR fails now, as it did for check_port
        time.sleep(0.01)
    else:
        pytest.skip("this kernel let a plain bind through TIME_WAIT")
    assert check_port("127.0.0.1", port, "--port") == port


def test_a_port_someone_listens_on_is_still_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        with pytest.raises(ServingError, match="Address already in use"):
            check_port("127.0.0.1", port, "--port")
