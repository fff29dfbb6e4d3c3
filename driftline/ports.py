"""Loopback port helpers for the embedded stack."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if nothing listens on ``host:port`` and we could bind it now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel considers free right now (there is a small race until used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def choose_port(preferred: int, host: str = LOOPBACK) -> int:
    """``preferred`` when it is free, otherwise any free port.

    ``0`` means "any free port". The stack prints the port it chose, so a busy default
    (another Kafka on 9092) never stops ``make up``.
    """
    if preferred and port_is_free(preferred, host):
        return preferred
    return free_port(host)


def accepts_connections(port: int, host: str = LOOPBACK, timeout_s: float = 0.2) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
