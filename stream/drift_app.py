"""Assemble the drift processor from settings: what ``driftline drift run`` starts."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from schemas.catalog import DRIFT_PARTIAL, DRIFT_SCORE
from schemas.codec import make_codec
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import (
    DEAD_LETTERS,
    DRIFT_PARTIALS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
)
from stream.drift_processor import DriftProcessor
from stream.feedback_join import FeedbackJoin
from stream.partitioned import PartitionedDriftProcessor
from stream.profiles import FileProfileSource, ProfileSource
from stream.runtime.checkpoint import FileCheckpointStore
from stream.runtime.feedback import FeedbackReader
from stream.runtime.loop import DriftLoop
from stream.settings import DriftProcessorSettings, DriftStatsSettings
from stream.stats import DecisionRule


def build_drift_loop(
    kafka: KafkaSettings | None = None,
    settings: DriftProcessorSettings | None = None,
    stats: DriftStatsSettings | None = None,
    profiles: ProfileSource | None = None,
) -> DriftLoop:
    """A ready :class:`DriftLoop` (not yet subscribed) for the configured cluster."""
    kafka = kafka or KafkaSettings()
    settings = settings or DriftProcessorSettings()
    stats = stats or DriftStatsSettings()
    prefix = kafka.topic_prefix
    codec = make_codec()
    producer = Producer(producer_config(kafka))
    consumer = Consumer(consumer_config(kafka, settings.group_id))
    inner = DriftProcessor(
        profiles or FileProfileSource(stats.reference_path),
        window_ms=round(settings.window_s * 1000),
        lateness_ms=round(settings.allowed_lateness_s * 1000),
        rule=DecisionRule.from_settings(stats),
        detector_block_size=settings.detector_block_size,
        join=FeedbackJoin(
            round(settings.join_window_s * 1000),
            max_predictions=settings.join_max_predictions,
            max_feedback=settings.join_max_feedback,
        )
        if settings.feedback_join
        else None,
        plan=settings.window_plan(),
        partitioned=settings.partitioned,
    )
    processor: DriftProcessor | PartitionedDriftProcessor = inner
    output_topic, record_type = DRIFT_SCORES.prefixed(prefix).name, DRIFT_SCORE
    if settings.partitioned:
        topics = _TopicProbe(consumer)
        processor = PartitionedDriftProcessor(
            inner,
            partition_count=topics.partition_count,
            is_empty=topics.is_empty,
            progress_interval_s=settings.progress_interval_s,
            heartbeat_s=settings.progress_heartbeat_s,
        )
        output_topic, record_type = DRIFT_PARTIALS.prefixed(prefix).name, DRIFT_PARTIAL
    dead_letters = DeadLetterRouter(
        producer, DEAD_LETTERS.prefixed(prefix).name, group=settings.group_id
    )
    feedback = None
    if settings.feedback_join:
        feedback = FeedbackReader(
            Consumer(consumer_config(kafka, f"{settings.group_id}-feedback")),
            codec,
            topic=INFERENCE_FEEDBACK.prefixed(prefix).name,
            dead_letters=dead_letters,
            lookback_s=settings.feedback_lookback_s,
        )
    return DriftLoop(
        consumer,
        producer,
        processor,
        codec,
        record_type=record_type,
        input_topic=INFERENCE_EVENTS.prefixed(prefix).name,
        output_topic=output_topic,
        dead_letters=dead_letters,
        group_id=settings.group_id,
        store=None
        if settings.state_dir is None
        else FileCheckpointStore(settings.state_dir, settings.group_id),
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        commit_interval_s=settings.commit_interval_s,
        feedback=feedback,
    )


class _TopicProbe:
    """What a partitioned processor asks the cluster: partition counts (cached a
    minute) and whether a partition holds no record at all."""

    def __init__(self, consumer: Consumer, ttl_s: float = 60.0) -> None:
        self.consumer = consumer
        self.ttl_s = ttl_s
        self._counts: dict[str, tuple[int, float]] = {}

    def partition_count(self, topic: str) -> int:
        """Partitions of ``topic`` (0 when the broker cannot say: the merge step then
        keeps the count it heard before)."""
        cached = self._counts.get(topic)
        if cached is not None and time.monotonic() - cached[1] < self.ttl_s:
            return cached[0]
        try:  # all topics: asking for one may auto-create it
            found = self.consumer.list_topics(timeout=10).topics.get(topic)
        except KafkaException:
            return 0 if cached is None else cached[0]
        count = 0 if found is None or found.error is not None else len(found.partitions)
        self._counts[topic] = (count, time.monotonic())
        return count

    def is_empty(self, topic: str, partition: int) -> bool:
        """True only when the broker says the partition has no record (else False:
        a partition that cannot be asked is never reported idle)."""
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=5, cached=False
            )
        except KafkaException:
            return False
        return bool(high <= low)
