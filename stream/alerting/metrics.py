"""Prometheus metrics of the alert evaluator (``DRIFTLINE_ALERTING_METRICS_PORT``)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

RECORDS: Final = Counter(
    "driftline_alerting_records",
    "Records evaluated, by source: drift (DriftScores), slo (SloWindows), deployments "
    "(DeploymentEvents, for RetrainCandidateRejected).",
    ["source"],
)
TRANSITIONS: Final = Counter(
    "driftline_alerting_transitions",
    "Alerts that started firing or resolved.",
    ["alertname", "severity", "state"],
)
FIRING: Final = Gauge(
    "driftline_alerting_firing", "Alerts firing now, by alert name.", ["alertname", "severity"]
)
RETRAIN_REQUESTS: Final = Counter(
    "driftline_alerting_retrain_requests", "RetrainRequests emitted on a breach.", ["alertname"]
)
NOTIFICATIONS_SENT: Final = Counter(
    "driftline_alerting_notifications_sent", "Alerts accepted by Alertmanager (re-sends too)."
)
SEND_FAILURES: Final = Counter(
    "driftline_alerting_send_failures",
    "POST /api/v2/alerts attempts that failed (retried with backoff).",
)
NOTIFICATIONS_PENDING: Final = Gauge(
    "driftline_alerting_notifications_pending", "Alert states waiting for Alertmanager."
)
NOTIFICATIONS_DROPPED: Final = Counter(
    "driftline_alerting_notifications_dropped",
    "Alert states dropped because the queue was full (firing ones come back on re-send).",
)
