"""Port choice for the embedded stack: the preferred port, or a free one if busy or
reserved by another stack on this machine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.exceptions import PortReservationError
from driftline.ports import (
    PortReservations,
    accepts_connections,
    choose_port,
    free_port,
    port_is_free,
)

REPO = Path(__file__).resolve().parents[2]


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


# A stack in another process: reserves ports when told "go", holds them until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from driftline.ports import PortReservations

reservations = PortReservations(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
print(*(reservations.reserve(int(sys.argv[2])) for _ in range(3)), flush=True)
sys.stdin.readline()
"""


def start_holder(lock_dir: Path, preferred: int) -> subprocess.Popen[str]:
    """A process holding reservations; ready to reserve when it returns."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), str(preferred)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def reserve_in(proc: subprocess.Popen[str]) -> list[int]:
    """Tell ``proc`` to reserve; the ports it got."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return [int(port) for port in proc.stdout.readline().split()]


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def test_stacks_started_at_once_never_share_a_port(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    """Four processes preferring the same free default, told to reserve at the same
    moment (each has imported everything first): every port is handed out once, and the
    default to exactly one of them. Without the locks all four get the default, since
    nobody binds it."""
    preferred = free_port()
    holders.extend(start_holder(tmp_path, preferred) for _ in range(4))
    for proc in holders:  # all waiting on stdin: release them back to back
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    got = []
    for proc in holders:
        assert proc.stdout is not None
        got.append([int(port) for port in proc.stdout.readline().split()])
    ports = [port for ports in got for port in ports]
    assert len(ports) == 12 and len(set(ports)) == 12, got
    assert sum(ports[0] == preferred for ports in got) == 1, got


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_a_reservation_ends_with_its_holder(
    tmp_path: Path, holders: list[subprocess.Popen[str]], ending: str
) -> None:
    """While another process holds the preferred port it is skipped; once that process
    is gone (a clean exit, or SIGKILL with no chance to clean up) it is chosen again."""
    preferred = free_port()
    holder = start_holder(tmp_path, preferred)
    holders.append(holder)
    assert reserve_in(holder)[0] == preferred
    with PortReservations(tmp_path) as mine:
        assert mine.reserve(preferred) != preferred
    if ending == "kill":
        holder.send_signal(signal.SIGKILL)
    else:
        assert holder.stdin is not None
        holder.stdin.close()
    holder.wait(timeout=30)
    with PortReservations(tmp_path) as mine:
        assert mine.reserve(preferred) == preferred


def test_released_ports_can_be_reserved_again_in_this_process(tmp_path: Path) -> None:
    """Two holders in one process conflict too (each lock is its own open file), and
    ``release`` gives the port back."""
    preferred = free_port()
    first, second = PortReservations(tmp_path), PortReservations(tmp_path)
    assert first.reserve(preferred) == preferred
    assert first.reserve(preferred) != preferred  # never twice to the same holder
    assert second.reserve(preferred) != preferred
    first.release()
    assert first.held == frozenset()
    assert second.reserve(preferred) == preferred
    second.release()


def test_choose_port_skips_a_port_another_stack_reserved() -> None:
    with PortReservations() as other:
        taken = other.reserve(free_port())
        assert port_is_free(taken)  # reserved, not bound: only the lock says it is taken
        assert choose_port(taken) != taken
    assert choose_port(taken) == taken


def test_an_unusable_lock_dir_is_a_precise_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(PortReservationError, match="cannot open the port lock file"):
        PortReservations(not_a_dir).reserve(0)
