"""Grafana's provisioned dashboards: present, wired to the provisioned data source, each
showing what the issue names, every PromQL query parsed by promtool; and the metric-name
reader the integration test (test_dashboard_metrics.py) relies on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql import Names, dashboard_expressions, grafana_to_promql, metric_names

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "infra/grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def board(title: str) -> dict[str, Any]:
    for path in DASHBOARDS:
        loaded: dict[str, Any] = json.loads(path.read_text())
        if loaded["title"] == title:
            return loaded
    raise AssertionError(f"no dashboard titled {title!r} in {GRAFANA / 'dashboards'}")


def exprs(title: str) -> str:
    path = next(p for p in DASHBOARDS if json.loads(p.read_text())["title"] == title)
    return "\n".join(expr for _, expr in dashboard_expressions(path))


def panels(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in node.get("panels", []):
        found.append(panel)
        found.extend(panels(panel))
    return found


# --- the metric-name reader ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (model_name) (rate(serving_app_requests_total{status=~"5.."}[5m]))',
         {"serving_app_requests_total"}),
        ("histogram_quantile(0.95, sum without (pod) (rate(lat_seconds_bucket[1m])))",
         {"lat_seconds_bucket"}),
        ('a_total / on (model, variant) group_left (version) b{x="sum(c_total)"} offset 1h30m',
         {"a_total", "b"}),
        ("max(x) by (model) > 0.8 and on (model) ALERTS{alertname=\"X\"}", {"x", "ALERTS"}),
        ("driftline:serving_requests:rate5m * 60 >= 20", {"driftline:serving_requests:rate5m"}),
        ('label_replace(m, "model", "$1", "model_name", "(.*)")', {"m"}),
        ("rate(m_total[5m:1m]) # a comment naming not_a_metric", {"m_total"}),
        ("sum(rate(q[$__rate_interval])) * 1e3 + .5 - 0x1F", {"q"}),
        ("topk(10, max by (model, feature) (stat{model=~\"$model\"}))", {"stat"}),
        ("sort_desc(x) == bool 1 unless y @ start()", {"x", "y"}),
    ],
)  # fmt: skip
def test_metric_names_reads_only_the_selected_metrics(expr: str, names: set[str]) -> None:
    assert metric_names(grafana_to_promql(expr)).exact == names


def test_name_selectors_are_patterns_or_names() -> None:
    found = metric_names('max by (job) ({__name__=~"driftline_(drift|slo)_lag_seconds"}) > 3')
    assert found == Names(frozenset(), frozenset({"driftline_(drift|slo)_lag_seconds"}))
    assert metric_names('{__name__="exact_total", job="x"}').exact == {"exact_total"}


# --- the dashboards -------------------------------------------------------------------


def test_the_three_dashboards_are_there_with_unique_uids() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert {"Inference SLO", "Drift", "Rollouts"} <= titles
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)), uids


def test_dashboards_use_the_provisioned_data_source_and_folder() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    for path in DASHBOARDS:
        loaded = json.loads(path.read_text())
        for panel in panels(loaded):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/driftline.yml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./infra/grafana/dashboards:{providers['providers'][0]['options']['path']}:ro" in mounts


def test_inference_slo_shows_rate_latency_errors_burn_rates_per_variant_and_canary() -> None:
    text = exprs("Inference SLO")
    for needle in (
        "rate(serving_app_requests_total",
        "histogram_quantile(0.95, sum by (model_name, model_variant, le)",
        "histogram_quantile(0.99, sum by (model_name, model_variant, le)",
        'status=~"5.."',
        "driftline_slo_burn_rate",
        "serving_app_canary_share",
    ):
        assert needle in text, needle


def test_drift_shows_scores_features_events_and_change_points() -> None:
    text = exprs("Drift")
    for needle in (
        "max by (model, version) (driftline_drift_score",
        "driftline_drift_feature_statistic",
        "driftline_drift_window_events",
        "driftline_drift_change_points_total",
        "driftline_drift_last_change_point_timestamp_seconds",
    ):
        assert needle in text, needle


def test_drift_shows_the_merge_step_of_partitioned_mode() -> None:
    """What the runbook's DriftMergeStalled section reads (stream/drift_metrics.py): which
    partitions hold the merged watermark back, its lag, and shares by outcome."""
    text = exprs("Drift")
    for needle in (
        "max by (partition) (driftline_drift_merge_waiting_partitions)",
        "max by (partition) (driftline_drift_merge_watermark_lag_seconds)",
        "max by (partition) (driftline_drift_merge_pending_windows)",
        "sum by (outcome) (rate(driftline_drift_merge_shares_total",
    ):
        assert needle in text, needle
    [lag] = [p for p in panels(board("Drift")) if p["title"] == "Merged watermark lag"]
    from stream.alerting.rules import load_rules

    [rule] = [r for r in load_rules().rules if r.alert == "DriftMergeStalled"]
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == rule.threshold, "the red line is the alert's threshold"


def test_rollouts_shows_versions_canary_steps_and_evidence() -> None:
    text = exprs("Rollouts")
    for needle in ("serving_app_model_loaded", "serving_app_canary_share", "driftline_slo_"):
        assert needle in text, needle


def test_rollouts_shows_the_shadow_comparison_and_the_controllers_verdict() -> None:
    """The shadow job's gauges (stream/shadow_metrics.py) and the canary controller's
    verdict (retrain/metrics.py), the verdict's values mapped to their words."""
    text = exprs("Rollouts")
    for needle in (
        "driftline_shadow_agreement_rate",
        "driftline_shadow_verdict",
        "driftline_shadow_latency_p99_ms",
        "driftline_shadow_pairs",
        "driftline_shadow_unmatched",
    ):
        assert needle in text, needle
    [verdict] = [p for p in panels(board("Rollouts")) if p["title"] == "Shadow verdict"]
    [mapping] = verdict["fieldConfig"]["defaults"]["mappings"]
    words = {value: option["text"] for value, option in mapping["options"].items()}
    from retrain.metrics import VERDICT_VALUES

    assert words == {f"{value:g}": word for word, value in VERDICT_VALUES.items()}


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each query becomes a recording rule; ``promtool check rules`` parses them all."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    queries = [(where, expr) for path in DASHBOARDS for where, expr in dashboard_expressions(path)]
    assert len(queries) > 30, len(queries)
    records = [{"record": f"dashboard:query_{i}", "expr": e} for i, (_, e) in enumerate(queries)]
    rules = {"groups": [{"name": "dashboards", "rules": records}]}
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Not vacuous: an unbalanced query fails the same check.
    records.append({"record": "dashboard:broken", "expr": "sum(rate(x[5m])"})
    path.write_text(yaml.safe_dump(rules))
    broken = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode != 0
