"""Support (no tests) for the partitioned drift tests: one model's events spread over the
partitions of ``inference.events``, the topics, the merge loop, and DriftScores by key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_PARTIALS, DRIFT_SCORES, INFERENCE_EVENTS, TopicSpec
from stream.merge_app import build_merge_loop
from stream.runtime.loop import ProcessorLoop
from stream.settings import DriftMergeSettings, DriftStatsSettings
from tests.integration.test_drift_processor_support import (
    CODEC,
    MODEL,
    breast_cancer,
    event,
    natural,
    window_events,
)

PARTITIONS = INFERENCE_EVENTS.partitions
#: (partition, or None for the producer's partitioner by key; key; value)
Sent = tuple[int | None, str, bytes]


def request_keyed(
    window: int, n: int, rng: np.random.Generator, shift: float = 0.0, *, spread: bool = False
) -> list[Sent]:
    """``n`` events of :data:`MODEL` in ``window``, keyed by request id; ``spread``: event
    ``i`` goes to partition ``i % PARTITIONS`` (so a test knows where each one is),
    else the producer's partitioner places it by key."""
    values = window_events(MODEL, window, n, rng, shift)
    return [
        (i % PARTITIONS if spread else None, f"request-{window}-{i}", v)
        for i, v in enumerate(values)
    ]


def closing(at_ms: int) -> list[Sent]:
    """One event per partition at ``at_ms``: every partition's watermark passes the
    windows before, so every one of them closes."""
    x, names = breast_cancer()
    return [
        (p, f"closing-{p}", event(MODEL, at_ms, x[p], names, 800_000 + p))
        for p in range(PARTITIONS)
    ]


def produce_to(settings: KafkaSettings, topic: str, records: list[Sent]) -> None:
    """Produce ``records`` in order (to their partition when one is given)."""
    producer = Producer(producer_config(settings))
    for partition, key, value in records:
        if partition is None:
            producer.produce(topic, value=value, key=key.encode())
        else:
            producer.produce(topic, value=value, key=key.encode(), partition=partition)
        producer.poll(0)
    assert producer.flush(30) == 0


def partitioned_topics(settings: KafkaSettings) -> list[TopicSpec]:
    """inference.events, drift.partials, drift.scores and dead letters under the
    settings' prefix (created), in that order."""
    specs = [
        s.prefixed(settings.topic_prefix)
        for s in (INFERENCE_EVENTS, DRIFT_PARTIALS, DRIFT_SCORES, DEAD_LETTERS)
    ]
    ensure_topics(make_admin(settings), specs)
    return specs


def merge_loop(settings: KafkaSettings, profiles: Path, group: str, state: Path) -> ProcessorLoop:
    """The merge step's loop, as ``driftline drift merge`` builds it, on the test broker."""
    return build_merge_loop(
        settings,
        DriftMergeSettings(
            group_id=group, state_dir=state, poll_timeout_s=0.2, metrics_port=0, commit_interval_s=0
        ),
        DriftStatsSettings(reference_path=profiles),
    )


def by_window(scores: list[dict[str, Any]], topic: str) -> dict[tuple[str, str, str, int], Any]:
    """DriftScores by natural key, each window exactly once; lineage names the run's
    (prefixed) input ``topic``, normalised to the declared name (offsets must agree)."""
    by_key = {natural(s): s for s in scores}
    assert len(by_key) == len(scores), "each window exactly once"
    for score in scores:
        for offset_range in score["lineage"]:
            assert offset_range["topic"] == topic
            offset_range["topic"] = INFERENCE_EVENTS.name
    return by_key


def read_to_end(
    settings: KafkaSettings, topic: str, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every record on ``topic`` now, decoded: read up to each partition's end offset
    taken first (repeats included; the bound only stops a broken broker)."""
    consumer = Consumer(consumer_config(settings, f"to-end-{time.monotonic_ns()}"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        got: list[dict[str, Any]] = []
        reached = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout_s
        while len(reached) < len(ends):
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {timeout_s} s"
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                partition, offset = msg.partition(), msg.offset()
                if msg.error() is not None or partition is None or offset is None:
                    continue
                got.append(CODEC.decode(msg.value() or b"").value)
                if offset + 1 >= ends[partition]:
                    reached.add(partition)
        return got
    finally:
        consumer.close()
