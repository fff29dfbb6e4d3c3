"""Canary analysis: window pairs judged against the baseline; steps; promotion at the end."""

from __future__ import annotations

from retrain.canary import SloSummary, analyse, next_share
from retrain.settings import CanaryAnalysisSettings

SETTINGS = CanaryAnalysisSettings(windows=3, min_requests=20)
BASE = SloSummary(requests=500, error_rate=0.01, p99_ms=20.0)
GOOD = SloSummary(requests=50, error_rate=0.015, p99_ms=25.0)


def test_enough_good_windows_pass_and_fewer_are_inconclusive() -> None:
    assert analyse([(0, GOOD, BASE), (60, GOOD, BASE)], SETTINGS).decision == "inconclusive"
    verdict = analyse([(0, GOOD, BASE), (60, GOOD, BASE), (120, GOOD, BASE)], SETTINGS)
    assert verdict.decision == "pass" and verdict.evidence["windows_passed"] == 3


def test_windows_with_too_few_canary_requests_are_no_evidence() -> None:
    thin = SloSummary(requests=5, error_rate=1.0, p99_ms=9999.0)
    pairs = [(0, thin, BASE), (60, GOOD, BASE), (120, GOOD, BASE)]
    assert analyse(pairs, SETTINGS).decision == "inconclusive"


def test_the_first_window_with_more_errors_fails_the_step() -> None:
    bad = SloSummary(requests=50, error_rate=0.03, p99_ms=20.0)
    verdict = analyse([(60, GOOD, BASE), (0, bad, BASE)], SETTINGS)
    assert verdict.decision == "fail"
    assert verdict.reasons == ["window 0: canary error rate 0.0300 > baseline 0.0100 + 0.01"]
    assert verdict.evidence["canary_error_rate"] == 0.03


def test_latency_fails_above_the_ratio_but_not_below_the_floor() -> None:
    slow = SloSummary(requests=50, error_rate=0.0, p99_ms=31.0)
    verdict = analyse([(0, slow, BASE)], SETTINGS)
    assert verdict.decision == "fail" and "canary p99 31.0 ms > 30.0 ms" in verdict.reason
    fast_base = SloSummary(requests=500, error_rate=0.0, p99_ms=1.0)
    noisy = SloSummary(requests=50, error_rate=0.0, p99_ms=4.0)  # 4x, under the 5 ms floor
    assert analyse([(0, noisy, fast_base)], SETTINGS).decision == "inconclusive"


def test_steps_then_promotion() -> None:
    steps = [0.1, 0.5, 1.0]
    assert next_share(0.1, steps) == 0.5
    assert next_share(0.5, steps) == 1.0
    assert next_share(1.0, steps) is None
    assert next_share(0.2, steps) == 0.5  # a share set by hand joins the ladder
