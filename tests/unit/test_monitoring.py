"""Finding Alertmanager and Prometheus, and the launcher's Prometheus config."""

from __future__ import annotations

import pytest

from driftline.monitoring import PROMETHEUS_RULES, missing_reason, prometheus_config


def test_a_missing_binary_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert missing_reason("alertmanager") == (
        "prometheus-alertmanager not on PATH (apt-get install prometheus-alertmanager, "
        "or `make setup`)"
    )
    assert missing_reason("prometheus") == (
        "prometheus not on PATH (apt-get install prometheus, or `make setup`)"
    )


def test_prometheus_config_scrapes_each_target_and_alerts_to_alertmanager() -> None:
    config = prometheus_config(
        {"serving": "127.0.0.1:8001", "alert-evaluator": "127.0.0.1:9105"}, "127.0.0.1:9093"
    )
    jobs = {c["job_name"]: c["static_configs"] for c in config["scrape_configs"]}  # type: ignore[attr-defined]
    assert jobs == {
        "serving": [{"targets": ["127.0.0.1:8001"]}],
        "alert-evaluator": [{"targets": ["127.0.0.1:9105"]}],
    }
    assert config["rule_files"] == [str(PROMETHEUS_RULES / "*.yml")]
    assert config["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]
    }
    assert "alerting" not in prometheus_config({}, None)
