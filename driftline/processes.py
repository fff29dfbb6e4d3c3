"""Child processes that the launcher starts, health-checks and always stops.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches
only the launcher, which then stops children in reverse start order: SIGTERM to the
whole group, then SIGKILL after a grace period. No orphan survives the launcher.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
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

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the process in a new session; output goes to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
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

    def wait_healthy(self, timeout_s: float) -> float:
        """Block until the health check passes; return the seconds it took.

        :raises ServiceUnhealthyError: the process exited, or stayed unhealthy past
            ``timeout_s``; the message carries the tail of its log.
        """
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
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

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace_s``; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
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


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
