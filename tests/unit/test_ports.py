"""The suite's private servers get ports no outgoing connection can take."""

from __future__ import annotations

import socket

from tests.ports import ephemeral_range, free_port


def test_free_ports_are_outside_the_ephemeral_range_and_bindable() -> None:
    low, high = ephemeral_range()
    ports = {free_port() for _ in range(50)}
    assert all(not low <= port <= high for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_held_port_is_not_handed_out() -> None:
    held = []
    try:
        for _ in range(20):
            sock = socket.socket()
            sock.bind(("127.0.0.1", free_port()))
            sock.listen(1)
            held.append(sock)
        taken = {sock.getsockname()[1] for sock in held}
        assert len(taken) == 20
        assert all(free_port() not in taken for _ in range(200))
    finally:
        for sock in held:
            sock.close()
