"""The rules TOML, the PromQL rules and the runbook stay in step.

Every alert of stream/alerting/rules.toml has a Prometheus twin with the same name,
severity, ``for`` and thresholds (firing and clearing), every Prometheus alert is in the
TOML, and every alert has a runbook section whose anchor its runbook_url names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from stream.alerting.rules import AlertRule, load_rules, parse_duration

REPO = Path(__file__).resolve().parents[2]
PROM_RULES = REPO / "infra" / "prometheus" / "rules" / "driftline.rules.yml"
RUNBOOK = REPO / "docs" / "runbook.md"


def prometheus_alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(PROM_RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def promql_number(rule: AlertRule, value: float) -> str:
    """How the TOML's threshold reads in PromQL (milliseconds become seconds)."""
    scaled = value / 1000 if any(m.endswith("_ms") for m in rule.metric) else value
    return f"{scaled:g}"


def test_every_toml_alert_has_a_promql_twin_with_the_same_numbers() -> None:
    prom = prometheus_alerts()
    toml_rules = load_rules().rules
    assert {r.alert for r in toml_rules} == set(prom)
    for rule in toml_rules:
        twin = prom[rule.alert]
        assert twin["labels"]["severity"] == rule.severity, rule.name
        assert twin["labels"]["evaluator"] == "prometheus", rule.name
        assert parse_duration(twin["for"]) == rule.for_s, rule.name
        expr = " ".join(twin["expr"].split())
        for value in {rule.threshold, rule.clear}:
            assert f"{rule.op} {promql_number(rule, value)}" in expr, (rule.name, value)
        assert twin["annotations"]["runbook_url"] == f"docs/runbook.md#{rule.anchor}"


def test_every_alert_has_a_runbook_section() -> None:
    headings = re.findall(r"^## (\w+)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    anchors = {h.lower() for h in headings}
    for rule in load_rules().rules:
        assert rule.anchor in anchors, f"docs/runbook.md has no '## {rule.alert}' section"
