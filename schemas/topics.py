"""Every Kafka topic Driftline uses, declared once.

Topics are always created explicitly from these declarations (``ensure_topics``):
a topic auto-created by the embedded broker gets 4 partitions and default settings,
which silently changes how keys spread. Names can be namespaced with
``DRIFTLINE_KAFKA_TOPIC_PREFIX``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

DAY_MS = 24 * 60 * 60 * 1000

CleanupPolicy = Literal["delete", "compact"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic's declaration.

    :param name: topic name without prefix.
    :param partitions: partition count; keyed records (model name, request id) rely on
        it staying the same, so a mismatch is reported, never "fixed" automatically.
    :param retention_ms: how long records stay; ``-1`` keeps them forever.
    :param cleanup_policy: ``compact`` keeps the last record per key (state topics).
    :param key: what the record key is, for readers of this file.
    :param description: what flows on the topic.
    """

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: CleanupPolicy
    key: str
    description: str

    def config(self) -> dict[str, str]:
        """Topic-level configuration passed to ``CreateTopics``."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}

    def prefixed(self, prefix: str) -> TopicSpec:
        """The same declaration under ``prefix + name``."""
        return replace(self, name=f"{prefix}{self.name}") if prefix else self


INFERENCE_EVENTS = TopicSpec(
    "inference.events", 6, 7 * DAY_MS, "delete", "model name",
    "One InferenceEvent per prediction, from serving and from the producer SDK.",
)  # fmt: skip
INFERENCE_FEEDBACK = TopicSpec(
    "inference.feedback", 6, 30 * DAY_MS, "delete", "request id",
    "FeedbackEvents: ground-truth labels arriving after the prediction.",
)  # fmt: skip
DRIFT_SCORES = TopicSpec(
    "drift.scores", 3, 30 * DAY_MS, "delete", "model name",
    "One DriftScore per model, version and closed window.",
)  # fmt: skip
SLO_WINDOWS = TopicSpec(
    "slo.windows", 3, 30 * DAY_MS, "delete", "model name",
    "One SloWindow per model, variant and window.",
)  # fmt: skip
ALERTS = TopicSpec(
    "alerts", 1, 30 * DAY_MS, "delete", "alert fingerprint",
    "Alert records, firing and resolved, mirrored from what goes to Alertmanager.",
)  # fmt: skip
RETRAIN_REQUESTS = TopicSpec(
    "retrain.requests", 3, 7 * DAY_MS, "delete", "model name",
    "RetrainRequests from drift and SLO breaches, the API and schedules.",
)  # fmt: skip
MODEL_DEPLOYMENTS = TopicSpec(
    "model.deployments", 1, -1, "compact", "model name",
    "DeploymentEvents; compacted, so the last record per model is its rollout state.",
)  # fmt: skip
SHADOW_COMPARISONS = TopicSpec(
    "shadow.comparisons", 3, 30 * DAY_MS, "delete", "model name",
    "One ShadowComparison per model and closed window: shadow vs served answers, joined by "
    "request id.",
)  # fmt: skip
DRIFT_PARTIALS = TopicSpec(
    "drift.partials", 3, DAY_MS, "delete",
    "model name (window partials); progress records are produced to every partition",
    "DriftPartials of the partitioned drift processor (issue 6): per input partition, a window "
    "partial when its watermark closes a window, and its watermark now and then; the merge "
    "step sums the partials of a window once every partition has passed its end.",
)  # fmt: skip
DEAD_LETTERS = TopicSpec(
    "driftline.dead-letters", 1, 30 * DAY_MS, "delete", "source topic",
    "Records that could not be decoded or validated, original bytes plus reason headers.",
)  # fmt: skip

#: Every topic Driftline declares, in data-flow order.
ALL_TOPICS: tuple[TopicSpec, ...] = (
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
    DRIFT_SCORES,
    SLO_WINDOWS,
    ALERTS,
    RETRAIN_REQUESTS,
    MODEL_DEPLOYMENTS,
    SHADOW_COMPARISONS,
    DRIFT_PARTIALS,
    DEAD_LETTERS,
)


def all_topics(prefix: str = "") -> tuple[TopicSpec, ...]:
    """Every declared topic, with ``prefix`` applied to each name."""
    return tuple(spec.prefixed(prefix) for spec in ALL_TOPICS)
