"""The SLO library: latency sketches, window state and burn-rate rules (pure, no Kafka).

The SLO processor (:mod:`stream.slo_processor`) feeds it decoded batches; tests and
benchmarks call it directly.
"""

from stream.slo.burn_rate import (
    DEFAULT_RULES,
    SLO_KINDS,
    BurnAlert,
    BurnEvaluation,
    BurnHistory,
    BurnRule,
    SloTargets,
    burn_rate,
    duration_label,
    evaluate,
)
from stream.slo.sketch import LatencySketch
from stream.slo.state import SloWindowState

__all__ = [
    "DEFAULT_RULES",
    "SLO_KINDS",
    "BurnAlert",
    "BurnEvaluation",
    "BurnHistory",
    "BurnRule",
    "LatencySketch",
    "SloTargets",
    "SloWindowState",
    "burn_rate",
    "duration_label",
    "evaluate",
]
