"""Assemble the drift processor from settings: what ``driftline drift run`` starts."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from schemas.catalog import DRIFT_SCORE
from schemas.codec import make_codec
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS, INFERENCE_FEEDBACK
from stream.drift_processor import DriftProcessor
from stream.feedback_join import FeedbackJoin
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
    processor = DriftProcessor(
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
    )
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
        record_type=DRIFT_SCORE,
        input_topic=INFERENCE_EVENTS.prefixed(prefix).name,
        output_topic=DRIFT_SCORES.prefixed(prefix).name,
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
