"""Prometheus and Alertmanager for the local stack: find the binaries and the configs,
and write Prometheus a config with the ports this stack actually chose.

The configs live in ``infra/`` of the checkout (``infra/prometheus``,
``infra/alertmanager``); ``infra/prometheus/prometheus.yml`` names the default ports.
The launcher writes its own copy (JSON, which is YAML) under ``<data_dir>/prometheus``,
because a busy default port makes the stack choose another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from driftline.binaries import ALERTMANAGER_NAMES, PROMETHEUS_NAMES, optional_binary

#: ``infra/`` of the checkout this package runs from (editable installs, ``make up``).
INFRA = Path(__file__).resolve().parents[1] / "infra"
ALERTMANAGER_CONFIG = INFRA / "alertmanager" / "alertmanager.yml"
PROMETHEUS_RULES = INFRA / "prometheus" / "rules"


def missing_reason(kind: str) -> str | None:
    """Why ``kind`` (``alertmanager`` or ``prometheus``) cannot start here, or None."""
    names = ALERTMANAGER_NAMES if kind == "alertmanager" else PROMETHEUS_NAMES
    package = "prometheus-alertmanager" if kind == "alertmanager" else "prometheus"
    if optional_binary(names) is None:
        return f"{names[0]} not on PATH (apt-get install {package}, or `make setup`)"
    needed = ALERTMANAGER_CONFIG if kind == "alertmanager" else PROMETHEUS_RULES
    if not needed.exists():
        return f"{needed} not found (run from a Driftline checkout)"
    return None


def prometheus_config(
    targets: Mapping[str, str],
    alertmanager: str | None,
    rule_files: list[Path] | None = None,
    interval_s: float = 15.0,
) -> dict[str, object]:
    """A Prometheus config scraping ``targets`` (job -> host:port) with Driftline's rules."""
    files = rule_files if rule_files is not None else [PROMETHEUS_RULES / "*.yml"]
    config: dict[str, object] = {
        "global": {
            "scrape_interval": f"{interval_s:g}s",
            "evaluation_interval": f"{interval_s:g}s",
            "external_labels": {"monitor": "driftline"},
        },
        "rule_files": [str(f) for f in files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def write_prometheus_config(path: Path, config: dict[str, object]) -> Path:
    """Write ``config`` to ``path`` (JSON is valid YAML for Prometheus)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
