"""infra/ configs checked by the real tools: promtool (config, rules, rule unit tests)
and amtool; the launcher's generated Prometheus config too. Skipped, naming the
binary, where the Debian packages are not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from driftline.monitoring import (
    ALERTMANAGER_CONFIG,
    INFRA,
    prometheus_config,
    write_prometheus_config,
)


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return found


def run(*argv: str, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_promtool_checks_the_rules_and_the_config() -> None:
    promtool = tool("promtool", "prometheus")
    out = run(promtool, "check", "rules", str(INFRA / "prometheus/rules/driftline.rules.yml"))
    assert "SUCCESS" in out
    run(promtool, "check", "config", str(INFRA / "prometheus/prometheus.yml"))


def test_promtool_rule_unit_tests_pass() -> None:
    promtool = tool("promtool", "prometheus")
    out = run(promtool, "test", "rules", "driftline.rules.test.yml", cwd=INFRA / "prometheus/tests")
    assert "SUCCESS" in out


def test_promtool_rule_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The promtool tests are not vacuous: a changed clear threshold fails them."""
    promtool = tool("promtool", "prometheus")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (INFRA / "prometheus/rules/driftline.rules.yml").read_text()
    broken = rules.replace("(driftline_drift_score) > 0.6", "(driftline_drift_score) > 0.75")
    assert broken != rules
    (tmp_path / "rules/driftline.rules.yml").write_text(broken)
    shutil.copy(INFRA / "prometheus/tests/driftline.rules.test.yml", tmp_path / "tests")
    done = subprocess.run(
        [promtool, "test", "rules", "driftline.rules.test.yml"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path / "tests",
    )  # fmt: skip
    assert done.returncode != 0
    assert "HighDriftScore, time: 32m" in done.stdout + done.stderr


def test_launcher_prometheus_config_is_valid(tmp_path: Path) -> None:
    promtool = tool("promtool", "prometheus")
    config = prometheus_config(
        {"serving": "127.0.0.1:18000", "alert-evaluator": "127.0.0.1:19105"}, "127.0.0.1:19093"
    )
    path = write_prometheus_config(tmp_path / "prometheus.yml", config)
    out = run(promtool, "check", "config", str(path))
    assert "1 rule files found" in out


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    out = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert "SUCCESS" in out and "4 receivers" in out
