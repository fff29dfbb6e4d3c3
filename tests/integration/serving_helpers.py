"""Helpers of the serving integration tests: read InferenceEvents back by request id."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import TopicPartition

from schemas.codec import SingleObjectCodec
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from tests.integration.conftest import assigned_consumer


def events_by_request(
    settings: KafkaSettings, wanted: set[str], timeout_s: float = 60.0, per_request: int = 1
) -> dict[str, list[dict[str, Any]]]:
    """Every InferenceEvent on the test's topic, grouped by request id.

    Reads from the start until each ``wanted`` id has ``per_request`` events (the timeout
    only bounds a broken run; the caller's assertions decide). Each value also carries the
    record key under ``"_key"``.
    """
    topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix).name
    consumer = assigned_consumer(
        settings, topic, INFERENCE_EVENTS.partitions, f"serving-test-{uuid.uuid4().hex[:8]}"
    )
    codec = SingleObjectCodec()
    got: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + timeout_s
    try:

        def done() -> bool:
            return all(len(got.get(w, ())) >= per_request for w in wanted)

        while not done() and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                value = codec.decode(msg.value() or b"").value
                value["_key"] = (msg.key() or b"").decode()
                got.setdefault(value["request_id"], []).append(value)
    finally:
        consumer.close()
    return got


def topic_partitions(settings: KafkaSettings) -> list[TopicPartition]:
    """The inference topic's partitions under the test's prefix."""
    topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix).name
    return [TopicPartition(topic, p) for p in range(INFERENCE_EVENTS.partitions)]
