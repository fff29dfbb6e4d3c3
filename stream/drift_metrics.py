"""Prometheus metrics of the drift processor (one set per process, labelled by model).

Served by ``prometheus_client.start_http_server`` on ``DRIFTLINE_DRIFT_METRICS_PORT``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

DRIFT_SCORE: Final = Gauge(
    "driftline_drift_score", "drift_score of the last closed window.", ["model", "version"]
)
SLIDING_DRIFT_SCORE: Final = Gauge(
    "driftline_drift_sliding_score",
    "drift_score of the last sliding window (merge of the tumbling windows it spans).",
    ["model", "version"],
)
DRIFTED: Final = Gauge(
    "driftline_drift_window_drifted", "1 when the last closed window was flagged.",
    ["model", "version"],
)  # fmt: skip
FEATURE_STATISTIC: Final = Gauge(
    "driftline_drift_feature_statistic",
    "Effect statistic of each feature in the last closed window (normalised Wasserstein "
    "for numeric features, Jensen-Shannon for categorical ones).",
    ["model", "version", "feature"],
)
WINDOW_EVENTS: Final = Gauge(
    "driftline_drift_window_events", "Events counted in the last closed window.",
    ["model", "version"],
)  # fmt: skip
WATERMARK_LAG: Final = Gauge(
    "driftline_drift_watermark_lag_seconds",
    "Wall-clock time minus the model's watermark (how far behind event time the closes are).",
    ["model"],
)
EVENTS: Final = Counter(
    "driftline_drift_events", "InferenceEvents counted into windows.", ["model", "version"]
)
LATE_EVENTS: Final = Counter(
    "driftline_drift_late_events",
    "Events whose window had already closed (reported in the next DriftScore).",
    ["model", "version"],
)
SKIPPED_EVENTS: Final = Counter(
    "driftline_drift_skipped_events",
    "Events not scored, by reason (unknown_model: no reference profile).",
    ["model", "reason"],
)
MISSING_FEATURES: Final = Counter(
    "driftline_drift_missing_feature_events",
    "Events scored without some reference feature (the feature is counted as missing).",
    ["model", "version"],
)
WINDOWS_CLOSED: Final = Counter(
    "driftline_drift_windows_closed", "DriftScores produced.", ["model", "version"]
)
CHANGE_POINTS: Final = Counter(
    "driftline_drift_change_points",
    "Change points flagged by the online detectors between window closes (detector: "
    "page_hinkley_prediction on the prediction mean, page_hinkley_feature per feature).",
    ["model", "detector", "feature"],
)
LAST_CHANGE_POINT: Final = Gauge(
    "driftline_drift_last_change_point_timestamp_seconds",
    "Event time of the newest change point of each online detector.",
    ["model", "detector", "feature"],
)
FEEDBACK_JOINED: Final = Counter(
    "driftline_drift_feedback_joined",
    "FeedbackEvents joined to their prediction (by request id, within the join window).",
    ["model"],
)
FEEDBACK_UNMATCHED: Final = Counter(
    "driftline_drift_feedback_unmatched",
    "FeedbackEvents not joined, by reason: duplicate (request already labelled: first "
    "label wins), expired (no prediction within the join window), evicted (memory bound), "
    "not_owned (a model another instance counts).",
    ["model", "reason"],
)
PREDICTIONS_UNLABELLED: Final = Counter(
    "driftline_drift_predictions_unlabelled",
    "Predictions that left the join without a label: expired (join window passed), "
    "evicted (memory bound) or revoked (their partition went to another instance).",
    ["model", "reason"],
)
LATE_LABELS: Final = Counter(
    "driftline_drift_late_labelled_predictions",
    "Joined predictions whose window had already closed: not in any DriftScore's accuracy "
    "(they are in driftline_drift_labelled_predictions and the ADWIN error detector).",
    ["model", "version"],
)
LABELLED_PREDICTIONS: Final = Counter(
    "driftline_drift_labelled_predictions",
    "Every joined prediction, by variant and correctness: realised accuracy over any range "
    'is rate(correct="true") / rate(all), late labels included.',
    ["model", "version", "variant", "correct"],
)
ACCURACY: Final = Gauge(
    "driftline_drift_accuracy",
    "Accuracy of the last closed window by variant and kind: estimated (mean confidence) "
    "or realised (labelled predictions; absent before any label).",
    ["model", "version", "variant", "kind"],
)
JOIN_HELD: Final = Gauge(
    "driftline_drift_feedback_join_held",
    "Items held by the feedback join: predictions (awaiting a label) and feedback "
    "(labels awaiting their prediction).",
    ["side"],
)

# -- the merge step (partitioned mode) --------------------------------------------------
MERGE_SHARES: Final = Counter(
    "driftline_drift_merge_shares",
    "Window partials the merge step received, by outcome: merged (into a waiting window), "
    "duplicate (a replay of one already merged: dropped), late (its window was already "
    "emitted: its events are reported as late).",
    ["outcome"],
)
MERGE_WATERMARK_LAG: Final = Gauge(
    "driftline_drift_merge_watermark_lag_seconds",
    "Wall-clock time minus the merged watermark (the smallest of every input partition's) "
    "per drift.partials partition.",
    ["partition"],
)
MERGE_WAITING_PARTITIONS: Final = Gauge(
    "driftline_drift_merge_waiting_partitions",
    "Input partitions holding the merged watermark back (silent, or the slowest), per "
    "drift.partials partition.",
    ["partition"],
)
MERGE_PENDING_WINDOWS: Final = Gauge(
    "driftline_drift_merge_pending_windows",
    "Windows waiting for the merged watermark, per drift.partials partition.",
    ["partition"],
)
