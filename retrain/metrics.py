"""Prometheus metrics of the retrain worker and the canary controller.

Served by ``prometheus_client.start_http_server`` on ``DRIFTLINE_RETRAIN_METRICS_PORT``
(``driftline retrain run``) and ``DRIFTLINE_CANARY_METRICS_PORT`` (``driftline canary
run``); each process only moves its own series. Labels are model names and fixed
vocabularies (outcome, action), never request ids or versions, so cardinality stays at
models x a handful. ``docs/retrain.md`` lists them with PromQL that uses them.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

#: RetrainOutcome status -> the ``outcome`` label (a passing candidate is ``trained``).
OUTCOMES: Final = {
    "challenger": "trained",
    "rejected": "rejected",
    "suppressed": "suppressed",
    "failed": "failed",
    "duplicate": "duplicate",
}

RETRAINS: Final = Counter(
    "driftline_retrain_requests",
    "RetrainRequests handled by the worker, by outcome: trained (passed the gate, now the "
    "canary), rejected (failed the gate), suppressed (cooldown), failed, duplicate (replay).",
    ["model", "outcome"],
)
TRAINING_SECONDS: Final = Histogram(
    "driftline_retrain_training_seconds",
    "Wall time of one training (training set, fit, scoring, MLflow run, gate, rollout), "
    "trained or rejected.",
    ["model"],
    buckets=(1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600),
)
CANARY_DECISIONS: Final = Counter(
    "driftline_canary_decisions",
    "Decisions of the canary controller, by action: canary_step, promoted, rolled_back.",
    ["model", "action"],
)
CANARY_SHARE: Final = Gauge(
    "driftline_canary_share",
    "Share of the model's traffic its canary gets (0..1) as the controller last read the "
    "rollout state; 0 without a canary.",
    ["model"],
)


def outcome_label(status: str) -> str:
    """The ``outcome`` label of a RetrainOutcome status (unknown ones as they are)."""
    return OUTCOMES.get(status, status)


SHADOW_DECISIONS: Final = Counter(
    "driftline_shadow_decisions",
    "Actions of the canary controller's shadow analysis (DRIFTLINE_CANARY_SHADOW_AUTO): "
    "promoted (the shadow became the champion), stopped (the shadow was cleared).",
    ["model", "action"],
)
SHADOW_VERDICT: Final = Gauge(
    "driftline_shadow_verdict",
    "Latest shadow analysis verdict per model: 1 pass, 0 inconclusive, -1 fail (acted on "
    "only with DRIFTLINE_CANARY_SHADOW_AUTO=true).",
    ["model"],
)

#: ``driftline_shadow_verdict`` value of each verdict.
VERDICT_VALUES: Final = {"pass": 1.0, "inconclusive": 0.0, "fail": -1.0}
