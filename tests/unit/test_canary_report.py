"""The stored canary analysis: each window judged by the step's own rules, JSON round trip."""

from __future__ import annotations

import pytest

from retrain.canary import SloSummary, analyse
from retrain.canary_report import canary_analysis, judge_window
from retrain.settings import CanaryAnalysisSettings
from schemas.canary_analysis import CanaryAnalysis

pytestmark = pytest.mark.unit

SETTINGS = CanaryAnalysisSettings(windows=3, min_requests=20, steps=[0.1, 1.0])
BASE = SloSummary(requests=500, error_rate=0.01, p99_ms=20.0)
GOOD = SloSummary(requests=50, error_rate=0.015, p99_ms=25.0)
THIN = SloSummary(requests=5, error_rate=1.0, p99_ms=999.0)
SLOW = SloSummary(requests=50, error_rate=0.0, p99_ms=31.0)


def test_each_window_is_judged_by_the_analysis_rules() -> None:
    assert judge_window((0, GOOD, BASE), SETTINGS) == "pass"
    assert judge_window((0, THIN, BASE), SETTINGS) == "too_few_requests"
    assert judge_window((0, SLOW, BASE), SETTINGS) == "fail"


def test_the_record_holds_the_verdict_windows_thresholds_and_step() -> None:
    pairs = [(120, SLOW, BASE), (0, GOOD, BASE), (60, THIN, BASE)]
    verdict = analyse(pairs, SETTINGS)
    record = canary_analysis("m", "7", 0.1, pairs, verdict, SETTINGS, "rolled_back", 42)
    assert record.verdict == "fail" and record.reason == verdict.reason
    assert [(w.window_start, w.judgement) for w in record.windows] == [
        (0, "pass"), (60, "too_few_requests"), (120, "fail"),
    ]  # fmt: skip
    assert record.windows[2].canary.latency_p99_ms == 31.0
    assert record.windows[2].baseline.requests == 500
    assert (record.step, record.steps, record.windows_required) == (0.1, [0.1, 1.0], 3)
    assert record.windows_passed == 1
    assert record.thresholds == {
        "min_requests": 20.0, "max_error_rate_increase": 0.01,
        "max_latency_ratio": 1.5, "latency_floor_ms": 5.0, "accuracy_max_decrease": 0.05,
        "accuracy_min_labelled": 100.0, "accuracy_min_predictions": 100.0,
    }  # fmt: skip
    assert record.evidence == verdict.evidence and record.evidence["canary_p99_ms"] == 31.0
    assert CanaryAnalysis.model_validate_json(record.model_dump_json()) == record
