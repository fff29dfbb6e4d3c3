"""Prometheus metrics of the shadow comparison job (labelled by model).

Served on ``DRIFTLINE_SHADOW_METRICS_PORT``. Gauges describe the last closed window of
each model; counters add up. docs/retrain.md#shadow-mode lists them.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

WINDOWS: Final = Counter(
    "driftline_shadow_windows", "ShadowComparison windows closed and published.", ["model"]
)
PAIRS: Final = Gauge(
    "driftline_shadow_pairs",
    "Requests answered by both the served variant and the shadow in the last window.",
    ["model"],
)
AGREEMENT: Final = Gauge(
    "driftline_shadow_agreement_rate",
    "Share of paired requests where the shadow predicted the served answer's class.",
    ["model"],
)
PREDICTION_SHIFT: Final = Gauge(
    "driftline_shadow_prediction_shift",
    "Total variation distance between the shadow's and the served predicted classes.",
    ["model"],
)
PROBABILITY_SHIFT: Final = Gauge(
    "driftline_shadow_probability_shift",
    "Mean |shadow - served| probability of the served class over the paired requests.",
    ["model"],
)
LATENCY_P99: Final = Gauge(
    "driftline_shadow_latency_p99_ms",
    "p99 latency of the paired answers, by side (served, shadow).",
    ["model", "side"],
)
UNMATCHED: Final = Gauge(
    "driftline_shadow_unmatched",
    "Answers of the last window left without a partner, by side (served, shadow).",
    ["model", "side"],
)
