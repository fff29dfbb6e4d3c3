"""The rule state machine: for-duration, hysteresis, dedup, replays; and its outputs."""

from __future__ import annotations

from typing import Any

from stream.alerting.alerts import fingerprint, idempotency_key, notice, retrain_request
from stream.alerting.evaluator import Evaluator, Observation, Transition
from stream.alerting.rules import AlertRule, RulesConfig, load_rules

MIN = 60_000
T0 = 1_764_000_000_000


def drift(i: int, score: float, version: str = "3", **extra: Any) -> Observation:
    """The i-th one-minute DriftScore of model m."""
    record = {
        "model_name": "m", "model_version": version, "window_start": T0 + i * MIN,
        "window_end": T0 + (i + 1) * MIN, "event_count": 500, "drift_score": score,
        "features": [{"feature": "f1", "statistic": 0.4, "drifted": True},
                     {"feature": "f2", "statistic": 0.01, "drifted": False}],
        **extra,
    }  # fmt: skip
    return Observation.from_drift_score(record)


def slo(i: int, variant: str = "baseline", **fields: Any) -> Observation:
    record = {
        "model_name": "m", "model_version": "3", "variant": variant,
        "window_start": T0 + i * MIN, "window_end": T0 + (i + 1) * MIN,
        "request_count": 1000, "error_rate": 0.0, "latency_p95_ms": 10.0, "burn_rates": {},
        **fields,
    }  # fmt: skip
    return Observation.from_slo_window(record)


def run(ev: Evaluator, observations: list[Observation]) -> list[tuple[int, Transition]]:
    """(index of the observation, transition) for every transition."""
    return [(i, t) for i, obs in enumerate(observations) for t in ev.observe(obs)]


def drift_only() -> Evaluator:
    config = load_rules()
    return Evaluator(RulesConfig(rules=config.for_source("drift")))


def test_drift_fires_after_15_minutes_of_breach_not_before() -> None:
    ev = drift_only()
    got = run(ev, [drift(i, 0.9) for i in range(20)])
    assert [(i, t.state) for i, t in got] == [(14, "firing")]  # window 14 ends at +15 min
    t = got[0][1]
    assert t.labels == {
        "alertname": "HighDriftScore", "severity": "critical", "evaluator": "stream", "model": "m",
        "variant": "all", "version": "3",
    }  # fmt: skip
    assert (t.since, t.at) == (T0, T0 + 15 * MIN)


def test_a_short_dip_restarts_the_pending_clock() -> None:
    scores = [0.9] * 10 + [0.5] + [0.9] * 15
    got = run(drift_only(), [drift(i, s) for i, s in enumerate(scores)])
    assert [(i, t.state) for i, t in got] == [(25, "firing")]


def test_hysteresis_hovering_at_the_threshold_does_not_flap() -> None:
    ev = drift_only()
    hovering = [0.9] * 15 + [0.79, 0.81, 0.78, 0.82, 0.7, 0.85] * 5  # never <= 0.6
    got = run(ev, [drift(i, s) for i, s in enumerate(hovering)])
    assert [t.state for _, t in got] == ["firing"]
    resolved = ev.observe(drift(len(hovering), 0.55))
    assert [t.state for t in resolved] == ["resolved"]
    assert resolved[0].since == T0  # the same alert: same start


def test_one_alert_per_identity_and_versions_are_separate() -> None:
    ev = drift_only()
    got = run(ev, [drift(i, 0.95, version=v) for i in range(16) for v in ("3", "4")])
    firing = [t for _, t in got if t.state == "firing"]
    assert sorted(t.labels["version"] for t in firing) == ["3", "4"]
    assert len({fingerprint(t.labels) for t in firing}) == 2


def test_replayed_windows_change_nothing() -> None:
    ev = drift_only()
    first = run(ev, [drift(i, 0.9) for i in range(16)])
    again = run(ev, [drift(i, 0.9) for i in range(16)])  # at-least-once input replay
    assert [t.state for _, t in first] == ["firing"]
    assert again == []


def test_a_hole_in_the_windows_restarts_a_pending_breach() -> None:
    windows = [drift(i, 0.9) for i in range(8)] + [drift(i, 0.9) for i in range(20, 30)]
    assert run(drift_only(), windows) == []


def test_small_windows_and_sliding_records_are_no_evidence() -> None:
    ev = drift_only()
    thin = [Observation.from_drift_score({**drift(i, 0.9).record, "event_count": 5})
            for i in range(20)]  # fmt: skip
    sliding = [drift(i, 0.9, window_kind="sliding") for i in range(20)]
    assert run(ev, thin + sliding) == []


def test_slo_rules_latency_error_rate_canary_and_burn_rates() -> None:
    ev = Evaluator(load_rules())
    got = run(ev, [slo(i, latency_p95_ms=1500.0) for i in range(6)])
    assert [(i, t.labels["alertname"], t.state) for i, t in got] == [
        (4, "ServingLatencyHigh", "firing")
    ]
    got = run(ev, [slo(i, "canary", error_rate=0.03) for i in range(6)])
    assert [(t.labels["alertname"], t.labels["variant"]) for _, t in got] == [
        ("CanaryDegraded", "canary")
    ]  # 3 % is not above the 5 % error-rate rule
    page = slo(6, latency_p95_ms=900.0, burn_rates={"1h": 20.0, "5m": 16.0, "6h": 2.0, "30m": 9.0})
    assert [(t.labels["alertname"], t.labels["slo"]) for t in ev.observe(page)] == [
        ("SloBurnRatePage", "availability")
    ]
    latency_page = slo(6, "canary", error_rate=0.03, latency_burn_rates={"1h": 30.0, "5m": 15.0})
    assert [(t.labels["alertname"], t.labels["slo"]) for t in ev.observe(latency_page)] == [
        ("SloBurnRatePage", "latency")
    ]
    only_one_window = slo(7, latency_p95_ms=900.0, burn_rates={"1h": 20.0, "5m": 3.0})
    assert [(t.labels["alertname"], t.state) for t in ev.observe(only_one_window)] == [
        ("SloBurnRatePage", "resolved")
    ]


def test_missing_metric_changes_nothing() -> None:
    ev = Evaluator(load_rules())
    assert run(ev, [slo(i, burn_rates={"1h": 50.0}) for i in range(3)]) == []


def test_less_than_operator() -> None:
    rule = AlertRule.model_validate({
        "name": "LowAccuracy", "severity": "warning", "source": "drift",
        "metric": "accuracy", "op": "<", "threshold": 0.7, "clear_threshold": 0.8,
        "summary": "s", "description": "d",
    })  # fmt: skip
    ev = Evaluator(RulesConfig(rules=(rule,)))
    states = run(ev, [drift(i, 0.0, accuracy=a) for i, a in enumerate([0.6, 0.75, 0.79, 0.85])])
    assert [(i, t.state) for i, t in states] == [(0, "firing"), (3, "resolved")]


def test_notice_annotations_and_alert_record() -> None:
    config = load_rules()
    ev = Evaluator(config)
    [(_, t)] = run(ev, [drift(i, 0.9) for i in range(15)])
    n = notice(t, config)
    assert n.annotations["runbook_url"] == "docs/runbook.md#highdriftscore"
    assert "drift_score 0.900" in n.annotations["description"]
    assert "f1" in n.annotations["description"] and "f2" not in n.annotations["description"]
    record = n.to_record()
    assert (record["state"], record["severity"], record["ends_at"]) == ("firing", "critical", None)
    am = n.to_alertmanager(now_ms=T0 + 20 * MIN, firing_ttl_ms=4 * MIN)
    assert am["startsAt"].startswith("2025-11-24T16:00:00") and am["labels"] == t.labels
    assert am["endsAt"].startswith("2025-11-24T16:24:00")


def test_high_severity_maps_to_the_record_enum_and_keeps_the_label() -> None:
    config = load_rules()
    [(_, t)] = run(Evaluator(config), [slo(i, error_rate=0.2) for i in range(5)])
    record = notice(t, config).to_record()
    assert (record["severity"], record["labels"]["severity"]) == ("warning", "high")


def test_idempotency_key_same_breach_same_key_new_breach_new_key() -> None:
    def breach_keys(scores: list[float]) -> list[str]:
        got = run(drift_only(), [drift(i, s) for i, s in enumerate(scores)])
        return [idempotency_key(t) for _, t in got if t.state == "firing"]

    scores = [0.9] * 16 + [0.1] + [0.9] * 16
    first, second = breach_keys(scores), breach_keys(scores)
    assert first == second and len(set(first)) == 2  # deterministic; two breaches
    [(_, t)] = run(drift_only(), [drift(i, 0.9) for i in range(15)])
    request = retrain_request(t, now_ms=T0)
    assert request["idempotency_key"] == first[0]
    assert (request["trigger"], request["urgency"], request["model_version"]) == (
        "drift", "high", "3",
    )  # fmt: skip
    assert request["evidence"]["scores"]["drift_score"] == 0.9
    assert request["evidence"]["scores"]["feature:f1"] == 0.4
    assert request["evidence"]["window_start"] == T0
