"""Child processes that the launcher starts, health-checks and always stops.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches
only the launcher, which then stops its children: SIGTERM to each whole group, then
SIGKILL after a grace period. No orphan survives the launcher.

Children that do not depend on each other start and stop side by side
(:func:`wait_all_healthy`, :func:`stop_all`): on a busy machine most of a child's
start-up is its own imports and connections, so waiting for one before launching the
next only adds the waits up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

from driftline.exceptions import ServiceUnhealthyError

HealthCheck = Callable[[], bool]


class ManagedProcess:
    """One server process with a name, a log file and a health check.

    :param name: shown to the user (``broker``, ``redis``).
    :param argv: the command line.
    :param log_path: where stdout and stderr go; shown when the service fails to start.
    :param health: returns True once the service answers.
    :param env: extra environment variables for the child.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        health: HealthCheck,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.health = health
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_at: float | None = None
        self._terminated = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the process in a new session; output goes to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._terminated = False
        self._started_at = time.monotonic()
        self._proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_healthy(self, timeout_s: float, cancel: threading.Event | None = None) -> float:
        """Block until the health check passes; return the seconds from launch to healthy.

        Both the result and ``timeout_s`` count from :meth:`start`, not from this call, so
        a process waited for after others started side by side reports its own time.

        :param cancel: set by another thread to give up early (a sibling failed).
        :raises ServiceUnhealthyError: the process exited, or stayed unhealthy past
            ``timeout_s``, or ``cancel`` was set; the message carries the tail of its log.
        """
        started = self._started_at if self._started_at is not None else time.monotonic()
        while time.monotonic() - started < timeout_s:
            if cancel is not None and cancel.is_set():
                raise ServiceUnhealthyError(f"{self.name}: start cancelled (log {self.log_path})")
            if not self.is_running():
                code = self._proc.returncode if self._proc else None
                raise ServiceUnhealthyError(
                    f"{self.name} exited with code {code} before becoming healthy; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.health():
                return time.monotonic() - started
            time.sleep(0.05)
        raise ServiceUnhealthyError(
            f"{self.name} not healthy after {timeout_s:.0f} s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def terminate(self) -> None:
        """SIGTERM the process group once; a second SIGTERM would make some servers
        (uvicorn) skip their graceful shutdown."""
        proc = self._proc
        if proc is not None and proc.poll() is None and not self._terminated:
            self._terminated = True
            _signal_group(proc.pid, signal.SIGTERM)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace_s``; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self.terminate()
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # The leader is gone; make sure nothing it spawned lives on in its group.
        _signal_group(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def wait_all_healthy(waits: Sequence[tuple[ManagedProcess, float]]) -> list[float]:
    """Wait for already started processes side by side, each with its own timeout; their
    seconds from launch to healthy, in the order given.

    :raises ServiceUnhealthyError: the first failure (with its log tail); the other waits
        are cancelled. Stopping the processes is the caller's job.
    """
    if not waits:
        return []
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=len(waits), thread_name_prefix="health") as pool:
        try:
            futures = [pool.submit(proc.wait_healthy, t, cancel) for proc, t in waits]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                error = future.exception() if future in done else None
                if error is not None:
                    raise error
            return [future.result() for future in futures]
        finally:
            cancel.set()  # also on KeyboardInterrupt: no thread outlives the call


def stop_all(procs: Sequence[ManagedProcess], grace_s: float = 5.0) -> None:
    """Stop processes side by side: SIGTERM to all, one shared ``grace_s`` for all of them
    to exit, then SIGKILL to the stragglers. Takes the slowest one's time, not the sum."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.stop(max(0.0, deadline - time.monotonic()))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
