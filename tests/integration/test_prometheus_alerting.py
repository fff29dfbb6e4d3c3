"""A real Prometheus scrapes a metrics endpoint, its Driftline rule fires, and the alert
reaches a real Alertmanager; it resolves when the metric recovers.

The endpoint exports the SLO processor's burn-rate gauge (same name and labels) from a
registry of the test's own, so the values are under the test's control; the config is
the launcher's (``driftline.monitoring.prometheus_config``) with the project's rules.
``SloBurnRatePage`` is the rule with ``for: 0s``: the others wait minutes by design.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from driftline.embedded import prometheus_process
from driftline.monitoring import prometheus_config, write_prometheus_config
from driftline.ports import LOOPBACK, free_port
from tests.integration.alerting_helpers import AlertmanagerServer


def test_prometheus_rule_fires_into_alertmanager_and_resolves(
    alertmanager: AlertmanagerServer, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    registry = CollectorRegistry()
    burn = Gauge(
        "driftline_slo_burn_rate", "test double of the SLO processor's gauge",
        ["model", "variant", "slo", "window"], registry=registry,
    )  # fmt: skip
    for window, value in {"1h": 20.0, "5m": 16.0, "6h": 2.0, "30m": 2.0}.items():
        burn.labels("fraud", "baseline", "availability", window).set(value)
    metrics_port = free_port()
    server, _ = start_http_server(metrics_port, addr=LOOPBACK, registry=registry)
    port = free_port()
    config = prometheus_config(
        {"slo-processor": f"{LOOPBACK}:{metrics_port}"},
        f"{LOOPBACK}:{alertmanager.port}",
        interval_s=1.0,
    )
    path = write_prometheus_config(tmp_path / "prometheus.yml", config)
    proc = prometheus_process(Path(binary), port, path, tmp_path / "tsdb", tmp_path)
    proc.start()
    try:
        proc.wait_healthy(60)
        [alert] = alertmanager.wait_for(
            True, timeout_s=90, alertname="SloBurnRatePage", evaluator="prometheus"
        )
        assert alert["labels"] == {
            "alertname": "SloBurnRatePage", "severity": "critical", "evaluator": "prometheus",
            "model": "fraud", "variant": "baseline", "slo": "availability",
            "monitor": "driftline",
        }  # fmt: skip
        assert alert["annotations"]["runbook_url"] == "docs/runbook.md#sloburnratepage"
        burn.labels("fraud", "baseline", "availability", "5m").set(3.0)  # below 10x: clears
        assert alertmanager.wait_for(False, timeout_s=90, alertname="SloBurnRatePage") == []
    finally:
        proc.stop()
        server.shutdown()
