"""The loop's commit order: the local checkpoint copy names only acknowledged outputs.

On a broker that drops offset-commit metadata (the embedded one) a restart takes its
checkpoint from the local store, matched by the committed offset. That offset often
does not move when a window closes (sliding windows hold it at the oldest window they
still need, for 15 minutes by default), so the new copy replaces the one the committed
offset points at: written before the flush, a crash (SIGKILL, or a flush that times
out) before the outputs were acknowledged restarted from a checkpoint saying they were
emitted, and they were lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from schemas.dead_letters import DeadLetterRouter
from stream.runtime.checkpoint import Checkpoint, FileCheckpointStore
from stream.runtime.loop import ProcessorLoop

TOPIC = "t.inference.events"


class Killed(BaseException):
    """The process dies here (nothing after it runs)."""


@dataclass
class FakeConsumer:
    """No records; remembers commits."""

    commits: list[list[tuple[int, int]]] = field(default_factory=list)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])


@dataclass
class FakeProducer:
    """Acknowledges everything at flush, unless it is told to die there."""

    produced: list[bytes] = field(default_factory=list)
    die_in_flush: bool = False

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.produced.append(value)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        if self.die_in_flush:
            raise Killed
        return 0


@dataclass(frozen=True)
class Output:
    key: str = "m"
    value: dict[str, Any] = field(default_factory=dict)
    headers: list[tuple[str, str | bytes | None]] = field(default_factory=list)


@dataclass
class FakeProcessor:
    """One partition whose checkpoint and outputs the test sets."""

    current: Checkpoint
    outputs: list[Output] = field(default_factory=list)
    partitions: dict[tuple[str, int], object] = field(default_factory=lambda: {(TOPIC, 0): 0})

    def assign(self, topic: str, partition: int, checkpoint: Any) -> None: ...
    def revoke(self, topic: str, partition: int) -> None: ...

    def checkpoint(self, topic: str, partition: int) -> Checkpoint:
        return self.current

    def close_ready(self) -> Sequence[Output]:
        out, self.outputs = self.outputs, []
        return out


class FakeCodec:
    def encode(self, record_type: str, value: dict[str, Any]) -> bytes:
        return b"score"


def _loop(
    tmp_path: Path, first: Checkpoint
) -> tuple[ProcessorLoop, FakeConsumer, FakeProducer, FakeProcessor, FileCheckpointStore]:
    """A loop with a local store over the fakes; ``first``: the processor's checkpoint."""
    store = FileCheckpointStore(tmp_path, "g")
    consumer, producer, processor = FakeConsumer(), FakeProducer(), FakeProcessor(first)
    loop = ProcessorLoop(
        consumer,  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        processor,
        FakeCodec(),  # type: ignore[arg-type]
        record_type="DriftScore", input_topic=TOPIC, output_topic="t.drift.scores",
        dead_letters=DeadLetterRouter(producer, "t.dead.letters"),  # type: ignore[arg-type]
        group_id="g", store=store, commit_interval_s=0, ingest=lambda p, m: 0,
    )  # fmt: skip
    return loop, consumer, producer, processor, store


def test_a_crash_before_the_outputs_are_acknowledged_restarts_from_the_committed_state(
    tmp_path: Path,
) -> None:
    committed = Checkpoint(0, 10, {"m": 59_000})
    loop, consumer, producer, processor, store = _loop(tmp_path, committed)
    loop.step()
    assert consumer.commits == [[(0, 0)]] and store.load(TOPIC, 0, 0) == committed

    # A window closes; the commit offset stays at 0 (what sliding windows still need).
    processor.current = Checkpoint(0, 20, {"m": 121_000})
    processor.outputs = [Output()]
    producer.die_in_flush = True
    with pytest.raises(Killed):
        loop.step()
    assert producer.produced == [b"score"]  # produced, never acknowledged
    assert consumer.commits == [[(0, 0)]]
    # The restart finds offset 0 committed: its checkpoint must be the one committed,
    # so the replay emits the window again (at-least-once), not one that says it was.
    assert store.load(TOPIC, 0, 0) == committed


def test_after_the_flush_the_copy_is_written_before_the_commit(tmp_path: Path) -> None:
    """A crash between the two finds the new copy only under the new offset; the
    committed one still finds its own (the store keeps two)."""
    loop, consumer, _, processor, store = _loop(tmp_path, Checkpoint(0, 10, {"m": 59_000}))
    loop.step()
    processor.current = Checkpoint(7, 20, {"m": 121_000})
    processor.outputs = [Output()]

    def die(offsets: list[TopicPartition], asynchronous: bool) -> None:
        raise Killed

    consumer.commit = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        loop.step()
    assert store.load(TOPIC, 0, 0) == Checkpoint(0, 10, {"m": 59_000})
    assert store.load(TOPIC, 0, 7) == Checkpoint(7, 20, {"m": 121_000})
