"""Fixtures shared by the event-contract integration tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import TopicSpec


@pytest.fixture
def make_topics(kafka_settings: KafkaSettings) -> Callable[..., list[str]]:
    """Create the given declared topics under this test's prefix; return their names."""

    def make(*specs: TopicSpec) -> list[str]:
        prefixed = [spec.prefixed(kafka_settings.topic_prefix) for spec in specs]
        ensure_topics(make_admin(kafka_settings), prefixed)
        return [spec.name for spec in prefixed]

    return make


def assigned_consumer(settings: KafkaSettings, topic: str, partitions: int, group: str) -> Consumer:
    """A consumer assigned (no group join: faster) to every partition from the start."""
    consumer = Consumer(consumer_config(settings, group))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def read_all(consumer: Consumer, expected: int, timeout_s: float = 60.0) -> list[object]:
    """Consume until ``expected`` records arrived (or the bound on a broken run)."""
    import time

    got: list[object] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is None:
                got.append(msg)
    return got
