"""Shadow analysis: does the shadow answer like the champion, window after window?

A pure function of ShadowComparison summaries (``driftline shadow run`` publishes one per
model and closed window on ``shadow.comparisons``), so every rule is unit-tested without
Kafka. A window is *evidence* when it has at least ``min_pairs`` paired requests; others
neither extend nor break a run of windows (as too-small canary windows do not count).
Each evidence window is judged on its own:

- ``pass``: agreement rate ≥ ``min_agreement`` and the shadow's p99 at most
  ``max_latency_ratio`` times the champion's (anything under ``latency_floor_ms`` passes);
- ``below_floor``: agreement rate < ``agreement_floor`` (clearly different answers);
- ``below_threshold`` / ``too_slow``: neither; it holds the verdict back.

The newest ``windows`` evidence windows decide: all ``pass`` → pass (promote), all
``below_floor`` → fail (stop the shadow), anything else or fewer → inconclusive.
Agreement, not accuracy: the rule says the shadow behaves like the champion, which is
why acting on it is opt-in (``DRIFTLINE_CANARY_SHADOW_AUTO``, docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retrain.canary import CanaryVerdict
from retrain.settings import ShadowAnalysisSettings
from schemas.shadow_analysis import ShadowWindowJudgement as WindowJudgement


@dataclass(frozen=True)
class ShadowWindow:
    """What the analysis reads of one ShadowComparison."""

    start_ms: int
    pairs: int
    agreement_rate: float | None
    champion_p99_ms: float | None
    shadow_p99_ms: float | None
    champion_version: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> ShadowWindow:
        """The summary of a decoded ShadowComparison."""

        def number(name: str) -> float | None:
            value = record.get(name)
            return None if value is None else float(value)

        return cls(
            start_ms=int(record["window_start"]),
            pairs=int(record["pair_count"]),
            agreement_rate=number("agreement_rate"),
            champion_p99_ms=number("champion_latency_p99_ms"),
            shadow_p99_ms=number("shadow_latency_p99_ms"),
            champion_version=record.get("champion_version"),
        )

    def is_evidence(self, settings: ShadowAnalysisSettings) -> bool:
        """Enough pairs, and the numbers a judgement needs (a window with pairs has them)."""
        return (
            self.pairs >= settings.min_pairs
            and self.agreement_rate is not None
            and self.champion_p99_ms is not None
            and self.shadow_p99_ms is not None
        )


def allowed_p99(window: ShadowWindow, settings: ShadowAnalysisSettings) -> float:
    """The highest shadow p99 that passes in ``window``."""
    return max((window.champion_p99_ms or 0.0) * settings.max_latency_ratio,
               settings.latency_floor_ms)  # fmt: skip


def judge_window(window: ShadowWindow, settings: ShadowAnalysisSettings) -> WindowJudgement:
    """How one evidence window is judged (see the module docstring)."""
    agreement = window.agreement_rate or 0.0
    if agreement < settings.agreement_floor:
        return "below_floor"
    if agreement < settings.min_agreement:
        return "below_threshold"
    if (window.shadow_p99_ms or 0.0) > allowed_p99(window, settings):
        return "too_slow"
    return "pass"


def _why(window: ShadowWindow, judgement: WindowJudgement, settings: ShadowAnalysisSettings) -> str:
    agreement = window.agreement_rate or 0.0
    if judgement == "too_slow":
        return (
            f"window {window.start_ms}: shadow p99 {window.shadow_p99_ms:.1f} ms > "
            f"{allowed_p99(window, settings):.1f} ms ({settings.max_latency_ratio:g} x champion "
            f"{window.champion_p99_ms:.1f} ms)"
        )
    if judgement == "below_floor":
        floor = settings.agreement_floor
        return f"window {window.start_ms}: agreement {agreement:.4f} < floor {floor:g}"
    if judgement == "below_threshold":
        return f"window {window.start_ms}: agreement {agreement:.4f} < {settings.min_agreement:g}"
    return f"window {window.start_ms}: agreement {agreement:.4f}"


def evidence_windows(
    windows: Sequence[ShadowWindow], settings: ShadowAnalysisSettings
) -> list[ShadowWindow]:
    """The newest ``settings.windows`` evidence windows, oldest first: all a verdict reads."""
    found = sorted((w for w in windows if w.is_evidence(settings)), key=lambda w: w.start_ms)
    return found[-settings.windows :]


def judge_shadow(
    windows: Sequence[ShadowWindow], settings: ShadowAnalysisSettings
) -> CanaryVerdict:
    """Pass, fail or inconclusive from the shadow's windows (any order; non-evidence skipped)."""
    recent = evidence_windows(windows, settings)
    judged = [(w, judge_window(w, settings)) for w in recent]
    passed = sum(1 for _, j in judged if j == "pass")
    evidence: dict[str, float] = {"windows_passed": float(passed)}
    if recent:
        newest = recent[-1]
        evidence |= {
            "agreement_rate": newest.agreement_rate or 0.0,
            "min_agreement_rate": min(w.agreement_rate or 0.0 for w in recent),
            "champion_p99_ms": newest.champion_p99_ms or 0.0,
            "shadow_p99_ms": newest.shadow_p99_ms or 0.0,
            "pairs": float(sum(w.pairs for w in recent)),
            "window_start": float(newest.start_ms),
        }
    if len(recent) < settings.windows:
        return CanaryVerdict(
            "inconclusive", [f"{len(recent)} of {settings.windows} evidence windows"], evidence
        )
    if passed == len(recent):
        return CanaryVerdict("pass", [
            f"{passed} windows in a row agree >= {settings.min_agreement:g} with p99 within "
            f"{settings.max_latency_ratio:g} x the champion's"
        ], evidence)  # fmt: skip
    if all(j == "below_floor" for _, j in judged):
        return CanaryVerdict("fail", [
            f"{len(recent)} windows in a row agree < floor {settings.agreement_floor:g} "
            f"(lowest {evidence['min_agreement_rate']:.4f})"
        ], evidence)  # fmt: skip
    holding = [_why(w, j, settings) for w, j in judged if j != "pass"]
    return CanaryVerdict(
        "inconclusive", [f"{passed} of {settings.windows} windows pass", *holding], evidence
    )
