"""Multi-window, multi-burn-rate rules (SRE workbook) on closed-window counts."""

from __future__ import annotations

import pytest

from stream.slo import (
    DEFAULT_RULES,
    BurnEvaluation,
    BurnHistory,
    BurnRule,
    SloTargets,
    burn_rate,
    duration_label,
    evaluate,
)
from stream.slo.burn_rate import WindowCounts

MIN = 60_000
TARGETS = SloTargets()  # 99.9 % availability, 99 % under 1 s, 30 days


def _history(per_minute: list[tuple[int, int, int]]) -> BurnHistory:
    """One 1-minute window per entry (requests, server errors, slow), from t = 0."""
    history = BurnHistory(keep_ms=6 * 3600 * 1000)
    for i, (requests, errors, slow) in enumerate(per_minute):
        history.add(WindowCounts(i * MIN, (i + 1) * MIN, requests, errors, slow))
    return history


def _alert(result: BurnEvaluation, slo: str, severity: str) -> bool:
    return next(a.firing for a in result.alerts if a.slo == slo and a.severity == severity)


def test_burn_rate_is_error_ratio_over_budget() -> None:
    assert burn_rate(1, 1000, 0.999) == pytest.approx(1.0)
    assert burn_rate(144, 10_000, 0.999) == pytest.approx(14.4)
    assert burn_rate(50, 1000, 0.99) == pytest.approx(5.0)
    assert burn_rate(0, 0, 0.999) == 0.0


def test_default_thresholds_are_the_workbook_ones_and_scale_with_the_period() -> None:
    page, ticket = DEFAULT_RULES
    assert page.threshold(30 * 86_400) == pytest.approx(14.4)
    assert ticket.threshold(30 * 86_400) == pytest.approx(6.0)
    # a 7-day SLO: 2 % of a week's budget in an hour is a smaller multiple
    assert page.threshold(7 * 86_400) == pytest.approx(0.02 * 168)
    assert (duration_label(page.long_s), duration_label(page.short_s)) == ("1h", "5m")
    assert (duration_label(ticket.long_s), duration_label(ticket.short_s)) == ("6h", "30m")


def test_invalid_rules_and_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="short_s <= long_s"):
        BurnRule("page", 300, 3600, 0.02)
    with pytest.raises(ValueError, match="budget_share"):
        BurnRule("page", 3600, 300, 0.0)
    with pytest.raises(ValueError, match="availability target"):
        SloTargets(availability=1.0)


def test_steady_budget_pace_burns_at_one_and_fires_nothing() -> None:
    result = evaluate(_history([(1000, 1, 10)] * 360), 360 * MIN, TARGETS, DEFAULT_RULES)
    assert result.availability == pytest.approx({"5m": 1.0, "30m": 1.0, "1h": 1.0, "6h": 1.0})
    assert result.latency == pytest.approx({"5m": 1.0, "30m": 1.0, "1h": 1.0, "6h": 1.0})
    assert result.firing() == []
    assert len(result.alerts) == 4  # 2 SLOs x 2 rules, firing or not


def test_outage_pages_on_both_windows_and_stops_when_the_short_one_recovers() -> None:
    clean = [(1000, 0, 0)] * 55
    outage = [(1000, 1000, 0)] * 5  # five minutes of server errors
    during = evaluate(_history(clean + outage), 60 * MIN, TARGETS, DEFAULT_RULES)
    assert during.availability["5m"] == pytest.approx(1000.0)
    assert during.availability["1h"] == pytest.approx(5 / 60 / 0.001)
    assert _alert(during, "availability", "page")
    assert _alert(during, "availability", "ticket")  # 6h look-back holds only this hour
    assert not _alert(during, "latency", "page")
    after = evaluate(_history(clean + outage + [(1000, 0, 0)] * 5), 65 * MIN, TARGETS,
                     DEFAULT_RULES)  # fmt: skip
    assert after.availability["1h"] > 14.4  # the long window still remembers...
    assert not _alert(after, "availability", "page")  # ...but the short one says it is over


def test_slow_requests_burn_the_latency_budget_only() -> None:
    slow = [(1000, 0, 200)] * 60  # 20 % over the threshold vs a 1 % budget: 20x
    result = evaluate(_history(slow), 60 * MIN, TARGETS, DEFAULT_RULES)
    assert result.latency["1h"] == pytest.approx(20.0)
    assert result.availability["1h"] == 0.0
    assert _alert(result, "latency", "page") and not _alert(result, "availability", "page")


def test_a_short_spike_alone_does_not_page() -> None:
    # one bad minute of a small batch: the 5m window burns far above 14.4x, the hour not
    spike = [(1000, 0, 0)] * 59 + [(100, 100, 0)]
    result = evaluate(_history(spike), 60 * MIN, TARGETS, DEFAULT_RULES)
    assert result.availability["5m"] >= 14.4
    assert result.availability["1h"] < 14.4
    assert not _alert(result, "availability", "page")


def test_look_backs_round_up_to_whole_windows_and_history_expires() -> None:
    history = BurnHistory(keep_ms=10 * MIN)
    for i in range(30):
        history.add(WindowCounts(i * MIN, (i + 1) * MIN, 10, i, 0))
    assert [w.start_ms for w in history.windows] == [i * MIN for i in range(20, 30)]
    assert history.totals(30 * MIN, 30_000) == (10, 29, 0)  # 30 s: the closing window
    assert history.totals(30 * MIN, 90_000) == (20, 57, 0)  # 90 s: two windows
    history.add(WindowCounts(29 * MIN, 30 * MIN, 10, 0, 0))  # re-emitted: replaces itself
    assert history.totals(30 * MIN, MIN) == (10, 0, 0)


def test_longer_windows_scale_the_look_backs() -> None:
    # 5-minute windows: a 5m look-back is the closing window, 1h is twelve of them
    history = BurnHistory(keep_ms=3600 * 1000)
    for i in range(12):
        history.add(WindowCounts(i * 5 * MIN, (i + 1) * 5 * MIN, 100, 100 if i == 11 else 0, 0))
    result = evaluate(history, 60 * MIN, TARGETS, DEFAULT_RULES)
    assert result.availability["5m"] == pytest.approx(1000.0)
    assert result.availability["1h"] == pytest.approx(1000.0 / 12)
