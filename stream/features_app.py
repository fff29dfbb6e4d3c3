"""Assemble the features processor from settings: what ``driftline features run`` starts."""

from __future__ import annotations

import redis
from confluent_kafka import Consumer, Producer

from schemas.codec import make_codec
from schemas.dead_letters import DeadLetterRouter
from schemas.feature_store import FeatureStore
from schemas.feature_views import FeatureViews, load_views
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import FeatureViewSettings, KafkaSettings, RedisSettings
from schemas.topics import DEAD_LETTERS
from stream.features_processor import FeatureProcessor
from stream.runtime.loop import ProcessorLoop
from stream.settings import FeatureProcessorSettings

#: What the loop's delivery errors name: the only records this processor produces.
RECORD_TYPE = "dead letter"


def build_features_loop(
    kafka: KafkaSettings | None = None,
    settings: FeatureProcessorSettings | None = None,
    redis_settings: RedisSettings | None = None,
    views: FeatureViews | None = None,
) -> ProcessorLoop:
    """A ready features :class:`ProcessorLoop` (not yet subscribed).

    It produces no records of its own: its output is Redis (written in the processor's
    ``close_ready``, before the loop commits), so the loop's output topic is the
    dead-letter topic, the only one it writes.

    :raises FeatureViewError: the views file is invalid.
    """
    kafka = kafka or KafkaSettings()
    settings = settings or FeatureProcessorSettings()
    redis_settings = redis_settings or RedisSettings()
    views = views if views is not None else load_views(FeatureViewSettings().views_path)
    prefix = kafka.topic_prefix
    producer = Producer(producer_config(kafka))
    client = redis.Redis.from_url(
        redis_settings.url.get_secret_value(), socket_timeout=5.0, socket_connect_timeout=5.0
    )
    store = FeatureStore(client, views, settings.group_id)
    dead_letters_topic = DEAD_LETTERS.prefixed(prefix).name
    processor = FeatureProcessor(views, store, retry_s=settings.retry_s)
    loop = ProcessorLoop(
        Consumer(consumer_config(kafka, settings.group_id)),
        producer,
        processor,
        make_codec(),
        record_type=RECORD_TYPE,
        input_topic=f"{prefix}{views.input_topic}",
        output_topic=dead_letters_topic,
        dead_letters=DeadLetterRouter(producer, dead_letters_topic, group=settings.group_id),
        group_id=settings.group_id,
        store=None,  # Redis holds how far each partition is merged (the idempotence marker)
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        commit_interval_s=settings.commit_interval_s,
    )
    processor.stopping = loop.stopping
    return loop
