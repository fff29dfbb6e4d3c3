"""Loopback port helpers for the embedded stack, and the reservations that keep two stacks
on one machine from choosing the same port.

The stack chooses every port in this process and hands it to a child (broker, Redis,
serving, Prometheus, ...) that binds it seconds later. A bound socket cannot be handed
over instead: most of those children are other programs that take a port number, not a
file descriptor. So between choosing and binding, the port looks free to everyone else,
and two stacks started at once (a bench and a test, two CI jobs) used to choose the same
preferred default; the second child then failed to bind and its stack stopped.

A :class:`PortReservations` closes that gap: choosing a port also takes an exclusive
``flock`` on ``<tempdir>/driftline-ports/<port>.lock`` and keeps the descriptor open
until :meth:`PortReservations.release` (the stack's ``stop``). Other stacks skip ports
whose lock they cannot take. The kernel drops the lock when the holder exits, however it
exits (even ``kill -9``), so a crashed stack never leaves a port reserved; the lock files
themselves stay (unlinking a lock file while another process opens it would let two
holders lock two different files for one port).
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import weakref
from pathlib import Path

from driftline.exceptions import PortReservationError

LOOPBACK = "127.0.0.1"

#: Where every Driftline process on this machine keeps its per-port lock files.
LOCK_DIR = Path(tempfile.gettempdir()) / "driftline-ports"

#: Candidates tried (the preferred one, then kernel-chosen ones) before giving up.
MAX_ATTEMPTS = 64


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


def _make_shared_dir(path: Path) -> None:
    """Create ``path`` writable by every user, sticky like the temp dir itself, so one
    user's stack does not lock the others out of reserving ports."""
    try:
        path.mkdir()
    except FileExistsError:
        return
    path.chmod(0o1777)


def _close_all(held: dict[int, int]) -> None:
    """Close every lock descriptor in ``held`` (which drops its lock) and forget it."""
    for fd in held.values():
        os.close(fd)
    held.clear()


class PortReservations:
    """Ports this process chose and holds against every other Driftline process.

    One per stack: :meth:`reserve` for each child, :meth:`release` when the stack stops.
    A port is never handed out twice while held, not even within this process (each
    lock is its own open file, and ``flock`` conflicts between open files, not processes).
    Lock descriptors are close-on-exec, so the children never inherit the reservations.
    """

    def __init__(self, lock_dir: Path = LOCK_DIR) -> None:
        self.lock_dir = lock_dir
        self._held: dict[int, int] = {}  # port -> open lock file descriptor
        # A stack dropped without stop() still gives its ports back once collected.
        self._finalizer = weakref.finalize(self, _close_all, self._held)

    @property
    def held(self) -> frozenset[int]:
        """The ports reserved and not yet released."""
        return frozenset(self._held)

    def reserve(self, preferred: int, host: str = LOOPBACK) -> int:
        """``preferred`` when it is bindable and nobody holds it, otherwise a free port the
        kernel suggests that nobody holds; reserved until :meth:`release`.

        ``0`` means "any free port".

        :raises PortReservationError: no candidate could be reserved (the lock directory
            is not writable, or every candidate was taken).
        """
        candidates = ([preferred] if preferred else []) + [0] * MAX_ATTEMPTS
        for candidate in candidates[:MAX_ATTEMPTS]:
            port = candidate or free_port(host)
            if port in self._held:
                continue
            fd = self._try_lock(port)
            if fd is None:
                continue
            # Bindable is checked under the lock: a holder that just released it may have
            # a child still listening there.
            if not port_is_free(port, host):
                os.close(fd)
                continue
            self._held[port] = fd
            return port
        raise PortReservationError(
            f"no free port on {host} could be reserved in {MAX_ATTEMPTS} tries "
            f"(preferred {preferred}, lock files in {self.lock_dir})"
        )

    def _try_lock(self, port: int) -> int | None:
        """The descriptor of ``port``'s lock file, locked exclusively, or None when another
        holder has it."""
        try:
            _make_shared_dir(self.lock_dir)
            # Read-only is enough for flock, and works on a lock file another user created.
            # O_NOFOLLOW: the directory is in a shared temp dir; never follow a planted link.
            fd = os.open(
                self.lock_dir / f"{port}.lock",
                os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
            )
        except OSError as exc:
            raise PortReservationError(
                f"cannot open the port lock file {self.lock_dir / f'{port}.lock'}: {exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        """Give every held port back. Safe to call twice."""
        _close_all(self._held)

    def __enter__(self) -> PortReservations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def choose_port(
    preferred: int, host: str = LOOPBACK, reservations: PortReservations | None = None
) -> int:
    """``preferred`` when it is free, otherwise any free port; never one that another
    Driftline process has reserved.

    ``0`` means "any free port". The stack prints the port it chose, so a busy default
    (another Kafka on 9092) never stops ``make up``. With ``reservations`` the port stays
    reserved there; without, it is only checked and the race until it is bound remains.
    """
    if reservations is not None:
        return reservations.reserve(preferred, host)
    with PortReservations() as once:
        return once.reserve(preferred, host)


def accepts_connections(port: int, host: str = LOOPBACK, timeout_s: float = 0.2) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
