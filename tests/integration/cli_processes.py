"""Support (no tests): ``driftline`` CLI processes a test can SIGKILL and start again.

The crash tests run the processors as the operator would (``python -m driftline drift
run``, ``drift merge``, ``slo run``), as real subprocesses, so SIGKILL ends them with
nothing flushed, committed or closed: what a crashed pod does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class CliProcess:
    """One ``driftline`` subprocess that can be killed and started again.

    :param name: for messages (``"drift"``, ``"merge"``).
    :param command: the CLI arguments, e.g. ``["drift", "run"]``.
    :param env: the whole environment (settings come from ``DRIFTLINE_*``).
    :param log: stdout and stderr of every start, appended.
    :param group: the consumer group the process prints in its banner (see :meth:`started`).
    """

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path, group: str
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.group = group
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        """Start it (again); it appends to the same log."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftline", *self.command],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no batch finished, nothing flushed or committed."""
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> int | None:
        """SIGTERM and its exit code (None: never started); SIGKILL after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def started(self) -> bool:
        """The current run has installed its SIGTERM handler: it printed its banner after.

        Stopping a run that is still importing would kill it (exit -15) instead of the
        graceful stop a test asserts; only the banner tells the two apart (it reaches the
        log at once with ``PYTHONUNBUFFERED=1`` in ``env``).
        """
        banners = self.log.read_text(errors="replace").count(f"(group {self.group})")
        return banners == self.starts

    def tail(self) -> str:
        """The end of the log, for assertion messages."""
        return self.log.read_text(errors="replace")[-3000:]


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds; the bound only stops a broken run (the caller
    asserts the result, so time never decides a pass)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
