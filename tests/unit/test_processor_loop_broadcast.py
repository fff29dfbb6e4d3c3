"""Broadcast outputs (a partitioned drift processor's progress reports) reach every
partition of the output topic, also partitions added while the loop runs; the loop
counts the dead letters its ingest hook reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.dead_letters import DeadLetterRouter
from stream.runtime.checkpoint import Checkpoint
from stream.runtime.loop import ProcessorLoop
from tests.unit.test_processor_loop_commit import (
    TOPIC,
    FakeCodec,
    FakeConsumer,
    FakeProcessor,
    Output,
)

OUTPUT_TOPIC = "t.drift.partials"


@dataclass(frozen=True)
class Broadcast(Output):
    broadcast = True


@dataclass
class Topic:
    partitions: dict[int, object]
    error: object = None


@dataclass
class Metadata:
    topics: dict[str, Topic]


@dataclass
class MetadataConsumer(FakeConsumer):
    """Answers list_topics with ``partitions`` partitions of the output topic."""

    partitions: int = 3
    asked: int = 0

    def list_topics(self, timeout: float) -> Metadata:
        self.asked += 1
        return Metadata({OUTPUT_TOPIC: Topic(dict.fromkeys(range(self.partitions)))})


@dataclass
class RecordingProducer:
    sent: list[tuple[str, int | None]] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.sent.append((kwargs["key"].decode(), kwargs.get("partition")))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def _loop(
    consumer: MetadataConsumer, producer: RecordingProducer, processor: FakeProcessor, dead: int
) -> ProcessorLoop:
    return ProcessorLoop(
        consumer,  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        processor,
        FakeCodec(),  # type: ignore[arg-type]
        record_type="DriftPartial", input_topic=TOPIC, output_topic=OUTPUT_TOPIC,
        dead_letters=DeadLetterRouter(producer, "t.dead.letters"),  # type: ignore[arg-type]
        group_id="g", commit_interval_s=0, ingest=lambda p, m: dead,
    )  # fmt: skip


def test_broadcast_outputs_reach_every_partition_and_keyed_ones_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, producer = MetadataConsumer(partitions=3), RecordingProducer()
    processor = FakeProcessor(Checkpoint(0, 0))
    loop = _loop(consumer, producer, processor, dead=0)
    processor.outputs = [Output(key="m"), Broadcast(key="")]
    loop.step()
    assert producer.sent == [("m", None), ("", 0), ("", 1), ("", 2)]
    now = time.monotonic()
    consumer.partitions = 5  # the topic grew; the loop asks again after a minute
    processor.outputs = [Broadcast(key="")]
    loop.step()
    assert [p for _, p in producer.sent[4:]] == [0, 1, 2] and consumer.asked == 1
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    processor.outputs = [Broadcast(key="")]
    loop.step()
    assert [p for _, p in producer.sent[7:]] == [0, 1, 2, 3, 4] and consumer.asked == 2


def test_dead_letters_reported_by_the_ingest_hook_are_counted() -> None:
    consumer, producer = MetadataConsumer(), RecordingProducer()

    @dataclass
    class Message:
        def error(self) -> None:
            return None

        def partition(self) -> int:
            return 0

    consumer.consume = lambda num_messages, timeout: [Message(), Message()]  # type: ignore[method-assign]
    loop = _loop(consumer, producer, FakeProcessor(Checkpoint(0, 0)), dead=2)
    loop.step()
    assert (loop.stats.messages, loop.stats.dead_letters) == (2, 2)
