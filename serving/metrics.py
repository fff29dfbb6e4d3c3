"""Prometheus metrics of the prediction service, on a registry per app instance.

Names follow Prometheus conventions (base units, ``_total`` counters). A per-app
registry (not the global one) lets tests and benchmarks run several apps in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving.publishing.publisher import PublisherHooks

#: Sub-millisecond resolution where /predict lives, up to slow outliers.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class ServingMetrics(PublisherHooks):
    """Every metric serving exports; also the publisher's count hooks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("model_name", "model_variant", "status")
        self.request_latency = Histogram(
            "serving_app_request_latency_seconds",
            "Time to answer a /predict request, by model, variant and HTTP status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "serving_app_requests_total",
            "/predict requests answered, by model, variant and HTTP status.",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "serving_app_errors_total",
            "/predict requests that failed: kind client_error (4xx) or server_error (5xx).",
            ("model_name", "kind", "error_type"),
            registry=self.registry,
        )
        self.predictions = Counter(
            "serving_app_predictions_total",
            "Rows predicted (a batch call counts each row).",
            ("model_name", "model_variant"),
            registry=self.registry,
        )
        self.events_published = Counter(
            "serving_app_events_published_total",
            "InferenceEvents acknowledged by Kafka.",
            registry=self.registry,
        )
        self.events_failed = Counter(
            "serving_app_events_failed_total",
            "InferenceEvent delivery attempts that failed (the event is spooled and retried).",
            registry=self.registry,
        )
        self.events_spooled = Counter(
            "serving_app_events_spooled_total",
            "InferenceEvents written to the on-disk spool while Kafka was away.",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "serving_app_events_dropped_total",
            "InferenceEvents lost on purpose: reason spool_full, rejected or unencodable.",
            ("reason",),
            registry=self.registry,
        )
        self.events_buffered = Gauge(
            "serving_app_events_buffered",
            "InferenceEvents waiting in memory for Kafka.",
            registry=self.registry,
        )
        self.spool_bytes = Gauge(
            "serving_app_spool_bytes",
            "Bytes of InferenceEvents in the on-disk spool.",
            registry=self.registry,
        )
        self.canary_share = Gauge(
            "serving_app_canary_share",
            "Share of traffic routed to the canary (0 until canary routing is enabled).",
            ("model_name",),
            registry=self.registry,
        )
        self.shadow_predictions = Counter(
            "serving_app_shadow_predictions_total",
            "Rows predicted by the shadow version (off the request path, never returned).",
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "serving_app_shadow_dropped_total",
            "Rows not given to the shadow: its queue was full, it failed, or shutdown.",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "serving_app_model_loaded",
            "1 while a model version is loaded, by model and version.",
            ("model_name", "model_version"),
            registry=self.registry,
        )

    def on_published(self) -> None:
        self.events_published.inc()

    def on_failed(self) -> None:
        self.events_failed.inc()

    def on_spooled(self) -> None:
        self.events_spooled.inc()

    def on_dropped(self, reason: str) -> None:
        self.events_dropped.labels(reason).inc()
