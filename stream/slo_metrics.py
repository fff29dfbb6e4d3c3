"""Prometheus metrics of the SLO processor (labelled by model and variant).

Served by ``prometheus_client.start_http_server`` on ``DRIFTLINE_SLO_METRICS_PORT``.
Gauges describe the last closed window of each (model, variant); counters add up every
window. ``docs/slo.md`` lists them with the PromQL that uses them.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

REQUESTS: Final = Counter(
    "driftline_slo_requests",
    "InferenceEvents counted into SLO windows, by outcome (ok, client_error, server_error).",
    ["model", "variant", "outcome"],
)
WINDOW_REQUESTS: Final = Gauge(
    "driftline_slo_window_requests", "Requests in the last closed window.", ["model", "variant"]
)
ERROR_RATE: Final = Gauge(
    "driftline_slo_error_rate",
    "Server errors per request in the last closed window (client errors excluded).",
    ["model", "variant"],
)
CLIENT_ERROR_RATE: Final = Gauge(
    "driftline_slo_client_error_rate",
    "Client errors per request in the last closed window.",
    ["model", "variant"],
)
LATENCY: Final = Gauge(
    "driftline_slo_latency_seconds",
    "Latency quantile (0.5, 0.95, 0.99) of the last closed window, from a DDSketch "
    "(relative error <= DRIFTLINE_SLO_RELATIVE_ACCURACY).",
    ["model", "variant", "quantile"],
)
BURN_RATE: Final = Gauge(
    "driftline_slo_burn_rate",
    "Error-budget burn rate at the last closed window's end, by SLO (availability, "
    "latency) and look-back window (5m, 30m, 1h, 6h with the default rules).",
    ["model", "variant", "slo", "window"],
)
BURN_ALERT: Final = Gauge(
    "driftline_slo_burn_alert_firing",
    "1 when the multi-window burn-rate rule (severity page or ticket) fires for the SLO.",
    ["model", "variant", "slo", "severity"],
)
WINDOWS_CLOSED: Final = Counter(
    "driftline_slo_windows_closed", "SloWindows produced.", ["model", "variant"]
)
LATE_EVENTS: Final = Counter(
    "driftline_slo_late_events",
    "Events whose window had already closed (reported in the next SloWindow).",
    ["model", "variant"],
)
WATERMARK_LAG: Final = Gauge(
    "driftline_slo_watermark_lag_seconds",
    "Wall-clock time minus the model's watermark (how far behind event time the closes are).",
    ["model"],
)
