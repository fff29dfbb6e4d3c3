"""Canary accuracy rule: is the canary less accurate than the baseline over the step?

The drift processor's DriftScores (``drift.scores``) carry, per model version, window and
variant, the number of predictions, their confidence-based **estimated** accuracy, and
the **realised** accuracy over the predictions joined to a FeedbackEvent before the window
closed (:mod:`stream.performance`). The rule pools the step's tumbling windows that both
the canary (its version, variant ``canary``) and the baseline (variant ``baseline``) have:

- realised accuracy = correct / labelled, summed over the windows;
- estimated accuracy = the prediction-weighted mean of the windows' estimates.

Which one judges is ``DRIFTLINE_CANARY_ACCURACY_SOURCE``: ``realised`` (default: only
labels are evidence; a less confident but equally right model is not punished),
``estimated`` (no labels needed; trusts calibration), or ``auto`` (realised once both
variants have ``accuracy_min_labelled`` labels, estimated before). The step **fails** when
the canary's accuracy is below the baseline's by more than
``DRIFTLINE_CANARY_ACCURACY_MAX_DECREASE``, as soon as both variants have the minimum
evidence. Without enough evidence the rule does not judge, and the SLO rules alone decide,
unless ``DRIFTLINE_CANARY_ACCURACY_REQUIRED`` makes a step wait for it.

Pure functions, unit-tested without Kafka; the controller feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from retrain.canary import CanaryVerdict
from retrain.settings import CanaryAnalysisSettings


@dataclass(frozen=True)
class VariantAccuracy:
    """One variant's performance in one window (a DriftScore ``performance`` entry)."""

    predictions: int
    estimated: float | None
    labelled: int
    accuracy: float | None


def variant_accuracy(record: Mapping[str, Any], variant: str) -> VariantAccuracy | None:
    """``variant``'s entry of a DriftScore, or None when the record has none."""
    for entry in record.get("performance") or ():
        if entry["variant"] == variant:
            return VariantAccuracy(
                int(entry["prediction_count"]),
                entry.get("estimated_accuracy"),
                int(entry.get("labelled_count") or 0),
                entry.get("accuracy"),
            )
    return None


@dataclass(frozen=True)
class Pooled:
    """A variant's accuracy over the step's windows."""

    predictions: int = 0
    labelled: int = 0
    correct: float = 0.0
    estimated_weight: int = 0
    estimated_sum: float = 0.0

    def add(self, window: VariantAccuracy) -> Pooled:
        correct = self.correct
        if window.accuracy is not None:
            correct += window.accuracy * window.labelled
        weight, total = self.estimated_weight, self.estimated_sum
        if window.estimated is not None:
            weight += window.predictions
            total += window.estimated * window.predictions
        return Pooled(
            self.predictions + window.predictions, self.labelled + window.labelled, correct,
            weight, total,
        )  # fmt: skip

    @property
    def realised(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def estimated(self) -> float | None:
        return self.estimated_sum / self.estimated_weight if self.estimated_weight else None


@dataclass(frozen=True)
class AccuracyJudgement:
    """``fail``, ``ok`` or ``no_evidence``, with the pooled numbers as evidence."""

    decision: Literal["fail", "ok", "no_evidence"]
    reason: str = ""
    evidence: dict[str, float] = field(default_factory=dict)


def judge_accuracy(
    pairs: Sequence[tuple[int, VariantAccuracy, VariantAccuracy]],
    settings: CanaryAnalysisSettings,
) -> AccuracyJudgement:
    """Pool ``(window_start, canary, baseline)`` pairs and apply the accuracy rule."""
    return judge_windows([c for _, c, _ in pairs], [b for _, _, b in pairs], settings)


def judge_windows(
    canary_windows: Sequence[VariantAccuracy],
    baseline_windows: Sequence[VariantAccuracy],
    settings: CanaryAnalysisSettings,
) -> AccuracyJudgement:
    """Pool each side's windows and apply the accuracy rule. The sides are the same
    windows, except at a 100 % share, where the baseline serves nothing and the canary's
    windows are compared with the previous step's baseline windows."""
    canary, baseline = Pooled(), Pooled()
    for c in canary_windows:
        canary = canary.add(c)
    for b in baseline_windows:
        baseline = baseline.add(b)
    kind = settings.accuracy_source
    labels = min(canary.labelled, baseline.labelled) >= settings.accuracy_min_labelled
    if kind == "realised" or (kind == "auto" and labels):
        if not labels:
            return AccuracyJudgement("no_evidence")
        used, c_acc, b_acc, n = "realised", canary.realised, baseline.realised, canary.labelled
    else:
        enough = min(canary.estimated_weight, baseline.estimated_weight)
        if enough < settings.accuracy_min_predictions:
            return AccuracyJudgement("no_evidence")
        used, c_acc, b_acc, n = "estimated", canary.estimated, baseline.estimated, enough
    assert c_acc is not None and b_acc is not None  # noqa: S101 - counts checked above
    evidence = {
        "canary_accuracy": c_acc,
        "baseline_accuracy": b_acc,
        "accuracy_estimated": 1.0 if used == "estimated" else 0.0,
        "accuracy_samples": float(n),
        "accuracy_windows": float(len(canary_windows)),
    }
    if c_acc < b_acc - settings.accuracy_max_decrease:
        reason = (
            f"canary {used} accuracy {c_acc:.4f} < baseline {b_acc:.4f} - "
            f"{settings.accuracy_max_decrease:g} over {len(canary_windows)} windows"
        )
        return AccuracyJudgement("fail", reason, evidence)
    return AccuracyJudgement("ok", "", evidence)


def combine(
    slo: CanaryVerdict, accuracy: AccuracyJudgement, settings: CanaryAnalysisSettings
) -> CanaryVerdict:
    """The step's verdict: an accuracy failure fails it even while the SLO rules wait; an
    SLO pass waits for accuracy evidence only when it is required."""
    evidence = slo.evidence | accuracy.evidence
    if slo.decision == "fail":
        return replace(slo, evidence=evidence)
    if accuracy.decision == "fail":
        return CanaryVerdict("fail", [accuracy.reason], evidence)
    if slo.decision == "pass" and accuracy.decision == "no_evidence" and settings.accuracy_required:
        return CanaryVerdict(
            "inconclusive", [*slo.reasons, "waiting for accuracy evidence"], evidence
        )
    return replace(slo, evidence=evidence)
