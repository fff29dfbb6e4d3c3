"""The alert rules file: the shipped defaults, durations, and precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.alerting.rules import format_duration, load_rules, parse_duration
from stream.exceptions import AlertRulesError

RULE = """
[[rules]]
name = "X"
severity = "high"
source = "slo"
metric = "error_rate"
threshold = 0.05
summary = "s"
description = "d"
"""


def test_shipped_rules_hold_the_runbook_defaults() -> None:
    rules = {r.name: r for r in load_rules().rules}
    assert set(rules) >= {
        "HighDriftScore", "ServingLatencyHigh", "ServingErrorRateHigh", "SloBurnRatePage",
        "SloBurnRateTicket", "CanaryDegraded", "FeatureFreshnessLag", "StreamLagHigh",
    }  # fmt: skip
    drift = rules["HighDriftScore"]
    assert (drift.severity, drift.threshold, drift.for_s, drift.retrain) == (
        "critical", 0.8, 900.0, True,
    )  # fmt: skip
    assert drift.clear < drift.threshold
    assert (rules["ServingLatencyHigh"].severity, rules["ServingLatencyHigh"].threshold) == (
        "high", 1000.0,
    )  # fmt: skip
    assert rules["ServingErrorRateHigh"].threshold == 0.05


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900.0), ("1h30m", 5400.0), ("0s", 0.0), ("45s", 45.0), (90, 90.0)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_bad_duration_names_the_rule_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE + 'for = "15 minutes"\n')
    with pytest.raises(AlertRulesError, match=r"rule 'X' \(#1\) for.*'15m'"):
        load_rules(path)


def test_clear_threshold_on_the_breaching_side_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE + "clear_threshold = 0.1\n")
    with pytest.raises(AlertRulesError, match="could never clear"):
        load_rules(path)


def test_unknown_template_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE.replace('summary = "s"', 'summary = "{modle} is slow"'))
    with pytest.raises(AlertRulesError, match=r"summary template.*modle"):
        load_rules(path)


def test_duplicate_names_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE + RULE)
    with pytest.raises(AlertRulesError, match=r"repeated: \['X'\]"):
        load_rules(path)
    path.write_text("[[rules]\n")
    with pytest.raises(AlertRulesError, match="not valid TOML"):
        load_rules(path)
    with pytest.raises(AlertRulesError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_shared_alertname_needs_distinct_labels_and_reserved_labels_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    twin = RULE.replace('name = "X"', 'name = "Y"\nalertname = "X"')
    path.write_text(RULE + twin)
    with pytest.raises(AlertRulesError, match="share an alertname and labels"):
        load_rules(path)
    path.write_text(RULE + twin.replace('alertname = "X"', 'alertname = "X"\nlabels = {slo = "l"}'))
    assert [r.alert for r in load_rules(path).rules] == ["X", "X"]
    path.write_text(RULE + 'labels = { model = "other" }\n')
    with pytest.raises(AlertRulesError, match=r"\['model'\] are set by the evaluator"):
        load_rules(path)
