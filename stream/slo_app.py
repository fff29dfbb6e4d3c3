"""Assemble the SLO processor from settings: what ``driftline slo run`` starts."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from schemas.catalog import SLO_WINDOW
from schemas.codec import make_codec
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS, SLO_WINDOWS
from stream.runtime.checkpoint import FileCheckpointStore
from stream.runtime.loop import ProcessorLoop
from stream.settings import SloSettings
from stream.slo import BurnRule, SloTargets
from stream.slo_history import SloWindowReader
from stream.slo_processor import HistorySource, SloProcessor


def targets_from(settings: SloSettings) -> SloTargets:
    """The SLO targets of ``settings``."""
    return SloTargets(
        availability=settings.availability_target,
        latency=settings.latency_target,
        latency_threshold_ms=settings.latency_threshold_ms,
        period_s=settings.period_days * 86_400,
    )


def rules_from(settings: SloSettings) -> tuple[BurnRule, ...]:
    """The page and ticket rules of ``settings``."""
    return (
        BurnRule(
            "page", settings.page_long_window_s, settings.page_short_window_s,
            settings.page_budget_share,
        ),
        BurnRule(
            "ticket", settings.ticket_long_window_s, settings.ticket_short_window_s,
            settings.ticket_budget_share,
        ),
    )  # fmt: skip


def build_slo_processor(
    settings: SloSettings, history_source: HistorySource | None = None
) -> SloProcessor:
    """The processor of ``settings`` (no Kafka unless ``history_source`` reads it)."""
    return SloProcessor(
        window_ms=round(settings.window_s * 1000),
        lateness_ms=round(settings.allowed_lateness_s * 1000),
        targets=targets_from(settings),
        rules=rules_from(settings),
        relative_accuracy=settings.relative_accuracy,
        history_source=history_source,
    )


def build_slo_loop(
    kafka: KafkaSettings | None = None, settings: SloSettings | None = None
) -> ProcessorLoop:
    """A ready SLO :class:`ProcessorLoop` (not yet subscribed) for the configured cluster."""
    kafka = kafka or KafkaSettings()
    settings = settings or SloSettings()
    prefix = kafka.topic_prefix
    producer = Producer(producer_config(kafka))
    codec = make_codec()
    output_topic = SLO_WINDOWS.prefixed(prefix).name
    reader = SloWindowReader(
        lambda: Consumer(consumer_config(kafka, f"{settings.group_id}-history")),
        output_topic,
        codec,
        max(r.long_s for r in rules_from(settings)) * 1000,
    )
    return ProcessorLoop(
        Consumer(consumer_config(kafka, settings.group_id)),
        producer,
        build_slo_processor(settings, reader),
        codec,
        record_type=SLO_WINDOW,
        input_topic=INFERENCE_EVENTS.prefixed(prefix).name,
        output_topic=output_topic,
        dead_letters=DeadLetterRouter(
            producer, DEAD_LETTERS.prefixed(prefix).name, group=settings.group_id
        ),
        group_id=settings.group_id,
        store=None
        if settings.state_dir is None
        else FileCheckpointStore(settings.state_dir, settings.group_id),
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        commit_interval_s=settings.commit_interval_s,
    )
