"""The shadow half of the canary controller: promote or stop a shadow on its comparisons.

:class:`~retrain.canary_controller.CanaryLoop` feeds it the ShadowComparisons of
``shadow.comparisons`` (same process, consumer, retries and dead letters as the canary
analysis: ``driftline canary run``). For each model whose rollout state has a shadow, it
keeps that shadow version's newest evidence windows, judges them with
:func:`retrain.shadow_analysis.judge_shadow`, and stores every analysis for serving's
``GET /analysis/{model}/shadow``. With ``DRIFTLINE_CANARY_SHADOW_AUTO=true`` it acts:

- pass → :func:`schemas.promotion.promote_shadow` (alias ``champion`` moved, rollout state,
  DeploymentEvent ``promoted`` with ``from_shadow`` = 1 and the verdict's evidence);
- fail → the shadow is stopped: ``shadow_version`` cleared in the rollout state (serving
  stops mirroring within a second). No DeploymentEvent: its action enum has no shadow
  symbol (docs/retrain.md#shadow-mode); the analysis record, the metric and the run's tags
  record it.

Either way the shadow version's MLflow run gets ``driftline.shadow_decision`` (``promote``
or ``stop``) and ``driftline.shadow_decision_reason``, set *before* acting so that a retry
after a failed action sets them again (the action itself is what is retried).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from retrain import metrics as m
from retrain.canary import CanaryVerdict
from retrain.settings import ShadowAnalysisSettings
from retrain.shadow_analysis import ShadowWindow, evidence_windows, judge_shadow, judge_window
from schemas.events import now_ms
from schemas.model_registry import ModelStore
from schemas.promotion import promote_shadow
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings
from schemas.shadow_analysis import JudgedShadowWindow, ShadowAnalysis, ShadowAnalysisStore

log = logging.getLogger(__name__)

#: Run tags recording a decision on the shadow version's MLflow run.
TAG_DECISION = "driftline.shadow_decision"
TAG_DECISION_REASON = "driftline.shadow_decision_reason"
#: The settings that decide a verdict, shown with it.
THRESHOLDS = (
    "min_agreement", "agreement_floor", "windows", "min_pairs", "max_latency_ratio",
    "latency_floor_ms",
)  # fmt: skip


@dataclass
class ShadowTrial:
    """One shadow version under analysis: its newest evidence windows (bounded)."""

    version: str
    windows: dict[int, ShadowWindow] = field(default_factory=dict)
    skipped: int = 0


@dataclass(frozen=True)
class ShadowDecision:
    """What the controller did with a shadow: ``promoted`` or ``stopped``."""

    model_name: str
    action: str
    version: str
    verdict: CanaryVerdict


class ShadowController:
    """Judge ShadowComparisons and (opt-in) act; :meth:`observe` is the whole logic."""

    def __init__(
        self,
        settings: ShadowAnalysisSettings,
        kafka: KafkaSettings,
        rollout: RolloutStore,
        store: ModelStore,
        clock: Callable[[], int] = now_ms,
        analyses: ShadowAnalysisStore | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.rollout = rollout
        self.store = store
        self.clock = clock
        self.trials: dict[str, ShadowTrial] = {}
        self.analyses = analyses or ShadowAnalysisStore(rollout.client)

    def observe(self, record: Mapping[str, Any]) -> ShadowDecision | None:
        """Take one ShadowComparison; act and return the decision when the shadow is decided."""
        model = str(record["model_name"])
        trial = self._trial(model)
        if trial is None or record.get("shadow_version") != trial.version:
            return None  # no shadow now, or another (or a mixed) shadow version's window
        window = ShadowWindow.of(record)
        if not window.is_evidence(self.settings):
            trial.skipped += 1
        else:
            trial.windows[window.start_ms] = window
            kept = evidence_windows(list(trial.windows.values()), self.settings)
            trial.windows = {w.start_ms: w for w in kept}
        verdict = judge_shadow(list(trial.windows.values()), self.settings)
        m.SHADOW_VERDICT.labels(model).set(m.VERDICT_VALUES[verdict.decision])
        action = None
        if self.settings.auto and verdict.decision != "inconclusive":
            action = "promoted" if verdict.decision == "pass" else "stopped"
        self.analyses.write(self._analysis(model, trial, verdict, action))
        if action is None:
            return None
        self._act(model, trial.version, action, verdict)
        self.trials.pop(model, None)
        m.SHADOW_DECISIONS.labels(model, action).inc()
        return ShadowDecision(model, action, trial.version, verdict)

    def _trial(self, model: str) -> ShadowTrial | None:
        """The shadow under analysis per the rollout state (a new trial when it changed)."""
        state = self.rollout.read(model)
        version = state.shadow_version if state is not None else None
        if version is None:
            self.trials.pop(model, None)
            return None
        trial = self.trials.get(model)
        if trial is None or trial.version != version:
            trial = self.trials[model] = ShadowTrial(version)
        return trial

    def _analysis(
        self, model: str, trial: ShadowTrial, verdict: CanaryVerdict, action: str | None
    ) -> ShadowAnalysis:
        windows = [
            JudgedShadowWindow(
                window_start=w.start_ms,
                judgement=judge_window(w, self.settings),
                pair_count=w.pairs,
                agreement_rate=w.agreement_rate or 0.0,
                champion_latency_p99_ms=w.champion_p99_ms or 0.0,
                shadow_latency_p99_ms=w.shadow_p99_ms or 0.0,
                champion_version=w.champion_version,
            )
            for w in sorted(trial.windows.values(), key=lambda w: w.start_ms)
        ]
        return ShadowAnalysis(
            model_name=model,
            verdict=verdict.decision,
            reason=verdict.reason,
            shadow_version=trial.version,
            windows_required=self.settings.windows,
            windows_passed=sum(1 for w in windows if w.judgement == "pass"),
            windows=windows,
            skipped_windows=trial.skipped,
            thresholds={name: float(getattr(self.settings, name)) for name in THRESHOLDS},
            evidence=dict(verdict.evidence),
            auto=self.settings.auto,
            action=action,
            analysed_at_ms=self.clock(),
        )

    def _act(self, model: str, version: str, action: str, verdict: CanaryVerdict) -> None:
        outcome = "passed" if action == "promoted" else "failed"
        reason = f"shadow analysis {outcome}: {verdict.reason}"
        run_id = self.store.run_id(model, version)
        if run_id is not None:
            client = self.store.activate()
            client.set_tag(run_id, TAG_DECISION, "promote" if action == "promoted" else "stop")
            client.set_tag(run_id, TAG_DECISION_REASON, reason[:5000])
        if action == "promoted":
            promote_shadow(
                model, self.rollout, self.store, self.kafka, reason, evidence=verdict.evidence
            )
        else:
            self.rollout.write_shadow(model, None)
        log.info("%s: shadow version %s %s: %s", model, version, action, verdict.reason)
