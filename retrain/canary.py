"""Canary analysis: does the canary serve as well as the baseline, window by window?

A pure function of SloWindow summaries (``stream``'s SLO processor publishes one per
model, variant and closed window on ``slo.windows``), so every rule is unit-tested
without Kafka. A window *pair* is the canary's and the baseline's SloWindow with the
same ``window_start``. Per pair, with at least ``min_requests`` canary requests:

- the canary's error rate may exceed the baseline's by at most ``max_error_rate_increase``;
- the canary's p99 latency may be at most ``max_latency_ratio`` times the baseline's
  (and anything under ``latency_floor_ms`` passes: sub-millisecond noise is no evidence).

The first failing pair fails the step (roll back at once); ``windows`` passing pairs pass
it; fewer is inconclusive (wait for more windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from retrain.settings import CanaryAnalysisSettings

Decision = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class SloSummary:
    """What the analysis reads of one SloWindow."""

    requests: int
    error_rate: float
    p99_ms: float


@dataclass(frozen=True)
class CanaryVerdict:
    """The decision, why, and the numbers behind it (DeploymentEvent evidence)."""

    decision: Decision
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or self.decision


def analyse(
    pairs: Sequence[tuple[int, SloSummary, SloSummary]], settings: CanaryAnalysisSettings
) -> CanaryVerdict:
    """Judge a step from its window pairs ``(window_start, canary, baseline)``, oldest first."""
    passed = 0
    evidence: dict[str, float] = {}
    for start, canary, baseline in sorted(pairs, key=lambda p: p[0]):
        if canary.requests < settings.min_requests:
            continue
        evidence = {
            "canary_error_rate": canary.error_rate,
            "baseline_error_rate": baseline.error_rate,
            "canary_p99_ms": canary.p99_ms,
            "baseline_p99_ms": baseline.p99_ms,
            "canary_requests": float(canary.requests),
            "window_start": float(start),
        }
        allowed_error = baseline.error_rate + settings.max_error_rate_increase
        if canary.error_rate > allowed_error:
            return CanaryVerdict("fail", [
                f"window {start}: canary error rate {canary.error_rate:.4f} > baseline "
                f"{baseline.error_rate:.4f} + {settings.max_error_rate_increase:g}"
            ], evidence)  # fmt: skip
        allowed_p99 = max(baseline.p99_ms * settings.max_latency_ratio, settings.latency_floor_ms)
        if canary.p99_ms > allowed_p99:
            return CanaryVerdict("fail", [
                f"window {start}: canary p99 {canary.p99_ms:.1f} ms > {allowed_p99:.1f} ms "
                f"({settings.max_latency_ratio:g} x baseline {baseline.p99_ms:.1f} ms)"
            ], evidence)  # fmt: skip
        passed += 1
    evidence["windows_passed"] = float(passed)
    if passed >= settings.windows:
        return CanaryVerdict("pass", [f"{passed} windows within thresholds"], evidence)
    return CanaryVerdict("inconclusive", [f"{passed} of {settings.windows} windows"], evidence)


def next_share(current: float, steps: Sequence[float]) -> float | None:
    """The share after ``current``; None when the last step passed (promote)."""
    for step in sorted(steps):
        if step > current + 1e-9:
            return step
    return None
