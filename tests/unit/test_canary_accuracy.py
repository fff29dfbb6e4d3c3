"""The canary's accuracy rule: pooled over the step's windows, realised or estimated."""

from __future__ import annotations

import pytest

from retrain.canary import CanaryVerdict
from retrain.canary_accuracy import (
    VariantAccuracy,
    combine,
    judge_accuracy,
    judge_windows,
    variant_accuracy,
)
from retrain.settings import CanaryAnalysisSettings
from tests.records_factory import samples

pytestmark = pytest.mark.unit

SETTINGS = CanaryAnalysisSettings(accuracy_min_labelled=100, accuracy_max_decrease=0.05)
BASE = VariantAccuracy(predictions=500, estimated=0.95, labelled=200, accuracy=0.95)


def _canary(accuracy: float | None, labelled: int = 60, estimated: float = 0.95) -> VariantAccuracy:
    return VariantAccuracy(
        predictions=100, estimated=estimated, labelled=labelled, accuracy=accuracy
    )


def test_realised_accuracy_is_pooled_over_windows_weighted_by_labels() -> None:
    # 60 labels at 0.80 and 60 at 1.0 -> 0.90 over 120 labels, 0.05 below 0.95: still ok
    ok = judge_accuracy([(0, _canary(0.8), BASE), (60, _canary(1.0), BASE)], SETTINGS)
    assert ok.decision == "ok" and ok.evidence["canary_accuracy"] == pytest.approx(0.9)
    assert ok.evidence["accuracy_samples"] == 120 and ok.evidence["accuracy_estimated"] == 0
    bad = judge_accuracy([(0, _canary(0.8), BASE), (60, _canary(0.9), BASE)], SETTINGS)
    assert bad.decision == "fail"
    assert bad.reason == "canary realised accuracy 0.8500 < baseline 0.9500 - 0.05 over 2 windows"


def test_too_few_labels_is_no_evidence_whatever_the_numbers() -> None:
    worst = judge_accuracy([(0, _canary(0.0, labelled=99), BASE)], SETTINGS)
    assert worst.decision == "no_evidence" and worst.evidence == {}


def test_estimated_source_judges_without_labels_and_auto_prefers_labels() -> None:
    unlabelled = _canary(None, labelled=0, estimated=0.70)
    estimated = CanaryAnalysisSettings(accuracy_source="estimated", accuracy_min_predictions=100)
    verdict = judge_accuracy([(0, unlabelled, BASE)], estimated)
    assert verdict.decision == "fail" and "canary estimated accuracy 0.7000" in verdict.reason
    auto = CanaryAnalysisSettings(accuracy_source="auto", accuracy_min_labelled=100)
    assert judge_accuracy([(0, unlabelled, BASE)], auto).decision == "fail"  # estimated
    confident_but_right = _canary(0.95, labelled=150, estimated=0.70)
    judged = judge_accuracy([(0, confident_but_right, BASE)], auto)
    assert judged.decision == "ok" and judged.evidence["accuracy_estimated"] == 0


def test_combine_fails_on_accuracy_while_slo_waits_and_can_require_evidence() -> None:
    waiting = CanaryVerdict("inconclusive", ["1 of 3 windows"], {"windows_passed": 1.0})
    bad = judge_accuracy([(0, _canary(0.5, labelled=150), BASE)], SETTINGS)
    failed = combine(waiting, bad, SETTINGS)
    assert failed.decision == "fail" and failed.reason == bad.reason
    assert failed.evidence["canary_accuracy"] == 0.5 and failed.evidence["windows_passed"] == 1
    passed = CanaryVerdict("pass", ["3 windows within thresholds"], {})
    none = judge_accuracy([], SETTINGS)
    assert combine(passed, none, SETTINGS).decision == "pass"
    required = CanaryAnalysisSettings(accuracy_required=True)
    assert combine(passed, none, required).decision == "inconclusive"


def test_a_drift_score_gives_each_variant_its_entry() -> None:
    record = samples()["DriftScore"]
    canary = variant_accuracy(record, "canary")
    assert canary is not None and canary.predictions == 120
    assert variant_accuracy(record, "shadow") is None
    assert variant_accuracy({"performance": []}, "canary") is None


def test_at_a_full_share_the_canary_is_judged_against_the_previous_steps_baseline() -> None:
    from retrain.canary_controller import StepState

    step = StepState("2", 1.0, None, previous_baseline_accuracy=[BASE])
    step.canary_accuracy[0] = _canary(0.7, labelled=150)
    canary, baseline = step.accuracy_windows()
    assert (canary, baseline) == ([step.canary_accuracy[0]], [BASE])
    verdict = judge_windows(canary, baseline, SETTINGS)
    assert verdict.decision == "fail" and "baseline 0.9500" in verdict.reason
    half = StepState("2", 0.5, None, previous_baseline_accuracy=[BASE])
    half.canary_accuracy[0] = _canary(0.7, labelled=150)  # no same-window baseline: unjudged
    assert half.accuracy_windows() == ([], [])
