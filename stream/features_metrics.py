"""Prometheus metrics of the features processor (labelled by view).

Served on ``DRIFTLINE_FEATURES_METRICS_PORT``; ``docs/features.md`` lists them. The lag
gauge is what the ``FeatureFreshnessLag`` alert rule watches.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

LAG: Final = Gauge(
    "driftline_feature_view_lag_seconds",
    "Event time of the newest event a view has seen minus that of the newest value "
    "written to Redis, seconds (grows while Redis writes fail).",
    ["view"],
)
MATERIALISED_TIME: Final = Gauge(
    "driftline_feature_view_materialised_timestamp_seconds",
    "Event time of the newest value of the view written to Redis.",
    ["view"],
)
EVENTS: Final = Counter(
    "driftline_feature_view_events",
    "InferenceEvents merged into a view's aggregates.",
    ["view"],
)
SKIPPED: Final = Counter(
    "driftline_feature_view_skipped_events",
    "Events a view did not use, by reason: no_entity (entity_id null), not_ok (the request "
    "failed), shadow (a shadow copy of a served request), replayed (already in Redis), "
    "expired (older than the entity's window when merged).",
    ["view", "reason"],
)
WRITES: Final = Counter(
    "driftline_feature_view_entities_written",
    "Entity hashes written to Redis (one per view, entity and write).",
    ["view"],
)
REDIS_ERRORS: Final = Counter(
    "driftline_feature_redis_errors",
    "Failed Redis transactions of the features processor (retried; nothing is lost).",
)
