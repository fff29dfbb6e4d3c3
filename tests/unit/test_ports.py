"""Port choice for the embedded stack: the preferred port, or a free one if busy."""

from __future__ import annotations

import socket

from driftline.ports import accepts_connections, choose_port, free_port, port_is_free


def test_preferred_port_is_used_when_free() -> None:
    port = free_port()
    assert choose_port(port) == port


def test_busy_preferred_port_falls_back_to_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not port_is_free(taken)
        assert accepts_connections(taken)
        chosen = choose_port(taken)
        assert chosen != taken
        assert port_is_free(chosen)


def test_zero_means_any_free_port() -> None:
    assert choose_port(0) > 0
