"""ManagedProcess: health waiting with useful errors, and stopping that leaves nothing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from driftline.exceptions import ServiceUnhealthyError
from driftline.processes import ManagedProcess


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_child_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "crasher",
        _python("import sys; print('port already in use', flush=True); sys.exit(3)"),
        tmp_path / "crasher.log",
        health=lambda: False,
    )
    proc.start()
    with pytest.raises(ServiceUnhealthyError) as info:
        proc.wait_healthy(10)
    proc.stop()
    assert "exited with code 3" in str(info.value)
    assert "port already in use" in str(info.value)


def test_health_timeout_is_reported(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "slow", _python("import time; time.sleep(30)"), tmp_path / "slow.log", lambda: False
    )
    proc.start()
    try:
        with pytest.raises(ServiceUnhealthyError, match="not healthy after"):
            proc.wait_healthy(0.3)
    finally:
        proc.stop()
    assert not proc.is_running()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A server that forks helpers must not leave them behind."""
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid));"
        "time.sleep(60)"
    )
    proc = ManagedProcess("forker", _python(code), tmp_path / "f.log", pidfile.exists)
    proc.start()
    proc.wait_healthy(10)
    grandchild = int(pidfile.read_text())
    assert psutil.pid_exists(grandchild)
    proc.stop(grace_s=2)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time, pathlib;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).touch();"
        "time.sleep(60)"
    )
    proc = ManagedProcess(
        "stubborn", _python(code), tmp_path / "s.log", (tmp_path / "ready").exists
    )
    proc.start()
    proc.wait_healthy(10)
    code_ = proc.stop(grace_s=0.3)
    assert code_ == -9
    assert not proc.is_running()


def test_child_runs_in_its_own_session(tmp_path: Path) -> None:
    """So a terminal's Ctrl-C reaches only the launcher, which then stops children."""
    proc = ManagedProcess(
        "s", _python("import time; time.sleep(30)"), tmp_path / "s.log", lambda: True
    )
    proc.start()
    try:
        assert proc.pid is not None
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    finally:
        proc.stop()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
