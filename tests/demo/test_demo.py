"""``make demo`` end to end, non-interactively (``driftline demo --no-live``).

The real local stack (embedded broker, redis-server, serving, every processor, and
Alertmanager and Prometheus when installed), the real loop: these tests take minutes on
a shared 2-core machine, so they are the ``demo`` kind (``make test-demo``), not part of
``make test`` (docs/demo.md says why).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from driftline.demo_monitor import STAGES

#: Bound of a broken run only (the stack start alone can take two minutes under load).
RUN_BOUND_S = 420


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DRIFTLINE_DEMO_DATA_DIR": str(data_dir),
        "COLUMNS": "200",
        **{f"DRIFTLINE_{name}_PORT": "0" for name in (
            "EMBEDDED_BROKER", "EMBEDDED_REDIS", "EMBEDDED_ALERTMANAGER", "EMBEDDED_PROMETHEUS",
            "SERVING", "DRIFT_METRICS", "SLO_METRICS", "ALERTING_METRICS")},
    }  # fmt: skip
    for var in ("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_REDIS_URL", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    return env


def _start(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "driftline", "demo", "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(data_dir),
        start_new_session=True,
    )


def _descendants(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_the_demo_goes_all_the_way_round_and_ends_with_a_summary(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        out, _ = proc.communicate(timeout=RUN_BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"demo still running after {RUN_BOUND_S} s:\n{out}") from None
    assert proc.returncode == 0, out
    assert "The loop went all the way round: demo complete." in out
    # --no-live prints each stage once, as it is seen.
    seen = [line.split(" ", 1)[1].split(":")[0] for line in out.splitlines()
            if re.match(r"\d\d:\d\d:\d\d (drift injected|[A-Za-z ]+:)", line)]  # fmt: skip
    assert seen[0] == "drift injected" and sorted(seen[1:]) == sorted(STAGES), out
    # The summary: a timestamped line per stage, in the order they happened (each stage
    # timed by its record's Kafka timestamp), then the report and the MLflow UI command.
    summary = out[out.index("Driftline demo: what happened") :]
    stages = re.findall(r"^  \d\d:\d\d:\d\d \+ *\d+\.\d s  (.+?)  +\S", summary, re.M)
    assert stages == ["traffic", "drift injected", *STAGES], summary
    assert re.search(r"MLflow run +run [0-9a-f]{32} registered version 2", summary)
    assert re.search(r"promotion +version 2 is the champion", summary)
    report = Path(re.search(r"HTML drift report .*: (\S+\.html)", summary).group(1))  # type: ignore[union-attr]
    assert report.is_file() and report.parent == tmp_path / "reports"
    page = report.read_text()
    assert page.count("<svg") == 30 and 'class="feature drift"' in page
    assert f"DRIFTLINE_DATA_DIR={tmp_path} make mlflow-ui" in summary
    # The retrained version is registered in the demo's own MLflow store.
    assert (tmp_path / "profiles" / "breast-cancer-classifier" / "2.json").is_file()


def test_ctrl_c_stops_the_demo_and_its_stack_cleanly(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    lines: list[str] = []
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + RUN_BOUND_S
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("stack up"):
                break
        assert lines and lines[-1].startswith("stack up"), "".join(lines)
        children = _descendants(proc)
        assert len(children) >= 6, [c.name() for c in children]
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends its foreground group
        out, _ = proc.communicate(timeout=120)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert "stopped cleanly (SIGINT)" in text
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
