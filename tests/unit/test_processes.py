"""ManagedProcess: health waiting with useful errors, and stopping that leaves nothing."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from driftline.exceptions import ServiceUnhealthyError
from driftline.processes import ManagedProcess, stop_all, wait_all_healthy


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


def test_side_by_side_wait_reports_each_time_from_its_own_launch(tmp_path: Path) -> None:
    """Both become healthy; each one's time counts from its launch, in the order given."""
    late = tmp_path / "late.flag"
    early = ManagedProcess("early", _python("import time; time.sleep(30)"), tmp_path / "e.log",
                           lambda: True)  # fmt: skip
    slow = ManagedProcess("slow", _python("import time; time.sleep(30)"), tmp_path / "s.log",
                          late.exists)  # fmt: skip
    early.start()
    slow.start()
    try:
        threading.Timer(0.5, late.touch).start()
        early_s, slow_s = wait_all_healthy([(early, 10), (slow, 10)])
    finally:
        stop_all([early, slow])
    assert early_s < 0.5 <= slow_s


def test_side_by_side_wait_raises_the_failure_without_waiting_for_the_rest(
    tmp_path: Path,
) -> None:
    """One child crashes while another would take its whole (long) timeout: the crash is
    raised with its log tail, and the other wait is cancelled instead of running out."""
    crasher = ManagedProcess(
        "crasher",
        _python("import sys; print('bad config', flush=True); sys.exit(2)"),
        tmp_path / "c.log",
        health=lambda: False,
    )
    never = ManagedProcess("never", _python("import time; time.sleep(60)"), tmp_path / "n.log",
                           lambda: False)  # fmt: skip
    crasher.start()
    never.start()
    try:
        with pytest.raises(ServiceUnhealthyError) as info:
            wait_all_healthy([(never, 60), (crasher, 60)])
        # no health-check thread is left polling the process that never becomes healthy
        assert not any(t.name.startswith("health") for t in threading.enumerate())
    finally:
        stop_all([crasher, never])
    assert "crasher exited with code 2" in str(info.value)
    assert "bad config" in str(info.value)


def test_stop_all_terminates_every_process_and_kills_stragglers(tmp_path: Path) -> None:
    """SIGTERM reaches every process; one that ignores it is killed after the shared grace."""
    polite = ManagedProcess("polite", _python("import time; time.sleep(60)"), tmp_path / "p.log",
                            lambda: True)  # fmt: skip
    stubborn = ManagedProcess(
        "stubborn",
        _python(
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            "print('ready', flush=True); time.sleep(60)"
        ),
        tmp_path / "s.log",
        health=lambda: "ready" in (tmp_path / "s.log").read_text(),
    )
    for proc in (polite, stubborn):
        proc.start()
    wait_all_healthy([(polite, 10), (stubborn, 10)])
    stop_all([stubborn, polite], grace_s=0.5)
    assert not polite.is_running() and not stubborn.is_running()
    assert polite._proc is not None and polite._proc.returncode == -signal.SIGTERM
    assert stubborn._proc is not None and stubborn._proc.returncode == -signal.SIGKILL
