"""The evidence record of one canary analysis, as serving's analysis endpoint shows it.

Each window is judged by :func:`retrain.canary.analyse` on that pair alone, so the
per-window judgements come from the same rules as the step's verdict and cannot drift
from them when a rule is added.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrain.canary import CanaryVerdict, SloSummary, analyse
from retrain.settings import CanaryAnalysisSettings
from schemas.canary_analysis import CanaryAnalysis, JudgedWindow, VariantWindow, WindowJudgement

#: The settings that decide a verdict, shown with it (names as in CanaryAnalysisSettings).
THRESHOLDS = (
    "min_requests", "max_error_rate_increase", "max_latency_ratio", "latency_floor_ms",
    "accuracy_max_decrease", "accuracy_min_labelled", "accuracy_min_predictions",
)  # fmt: skip


def _variant(summary: SloSummary) -> VariantWindow:
    return VariantWindow(
        requests=summary.requests, error_rate=summary.error_rate, latency_p99_ms=summary.p99_ms
    )


def judge_window(
    pair: tuple[int, SloSummary, SloSummary], settings: CanaryAnalysisSettings
) -> WindowJudgement:
    """``pass``, ``fail`` or ``too_few_requests`` for one pair, by the step's own rules."""
    verdict = analyse([pair], settings)
    if verdict.decision == "fail":
        return "fail"
    return "pass" if verdict.evidence.get("windows_passed", 0.0) >= 1 else "too_few_requests"


def canary_analysis(
    model_name: str,
    version: str,
    share: float,
    pairs: Sequence[tuple[int, SloSummary, SloSummary]],
    verdict: CanaryVerdict,
    settings: CanaryAnalysisSettings,
    action: str | None,
    analysed_at_ms: int,
) -> CanaryAnalysis:
    """The record the controller stores for serving (:mod:`schemas.canary_analysis`)."""
    windows = [
        JudgedWindow(
            window_start=start,
            judgement=judge_window((start, canary, baseline), settings),
            canary=_variant(canary),
            baseline=_variant(baseline),
        )
        for start, canary, baseline in sorted(pairs, key=lambda p: p[0])
    ]
    return CanaryAnalysis(
        model_name=model_name,
        verdict=verdict.decision,
        reason=verdict.reason,
        canary_version=version,
        step=share,
        steps=list(settings.steps),
        windows_required=settings.windows,
        windows_passed=sum(1 for w in windows if w.judgement == "pass"),
        windows=windows,
        thresholds={name: float(getattr(settings, name)) for name in THRESHOLDS},
        action=action,
        analysed_at_ms=analysed_at_ms,
        evidence=dict(verdict.evidence),
    )
