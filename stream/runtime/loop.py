"""The Kafka loop of a windowed processor: consume, decode, count, emit, flush, commit.

One iteration::

    consume(num_messages=N) -> per partition: decode_inference_batch -> dead letters
    -> processor.process -> close_ready -> produce outputs (DriftScores, SloWindows)
    -> flush (outputs and dead letters acknowledged) -> local checkpoint copies -> commit

Offsets are committed only after the outputs (and dead letters) of everything
before them are acknowledged, and they stop at the first event of the oldest open
window; a restart replays from there and rebuilds the open windows (see
``stream/runtime/checkpoint.py``). Delivery is at-least-once: a crash between a flush
and its commit re-emits the same windows, identical and under the same natural key.

The loop knows nothing of drift or SLOs: any :class:`WindowedProcessor` (the drift
processor, the SLO processor) and the record type its outputs are encoded as.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import Codec
from schemas.dead_letters import DeadLetterRouter
from schemas.exceptions import DeliveryError
from schemas.inference_batch import InferenceBatch, decode_inference_batch
from stream.exceptions import CheckpointError
from stream.feedback_join import Label
from stream.runtime.checkpoint import Checkpoint, Committable, JsonCheckpointStore
from stream.runtime.feedback import FeedbackReader

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


class WindowOutput(Protocol):
    """One record to produce when a window closes (a DriftOutput, an SloOutput, a
    window partial). An output whose class sets ``broadcast = True`` (a partitioned
    drift processor's progress report) goes to every partition of the output topic."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> dict[str, Any]: ...
    @property
    def headers(self) -> Headers: ...


class CommittingProcessor(Protocol):
    """What the loop drives: per-partition state it commits a checkpoint of, and outputs
    when something closes. Records reach it through :class:`WindowedProcessor`'s
    ``process`` (InferenceEvents) or the loop's ``ingest`` hook (the merge step's
    partials)."""

    @property
    def partitions(self) -> Mapping[tuple[str, int], object]: ...
    def assign(self, topic: str, partition: int, checkpoint: Any) -> None: ...
    def revoke(self, topic: str, partition: int) -> None: ...
    def checkpoint(self, topic: str, partition: int) -> Committable | None: ...
    def close_ready(self) -> Sequence[WindowOutput]: ...


@runtime_checkable
class WindowedProcessor(CommittingProcessor, Protocol):
    """Per-partition windows fed decoded InferenceEvent batches, closed by watermark.

    Implemented by :class:`stream.drift_processor.DriftProcessor` and
    :class:`stream.slo_processor.SloProcessor`; both keep a
    :class:`~stream.runtime.windows.PartitionWindows` per assigned partition.
    """

    def process(
        self, topic: str, partition: int, batch: InferenceBatch, offsets: npt.NDArray[np.int64]
    ) -> None: ...


#: Takes one partition's consumed messages (in order) instead of InferenceEvent decoding;
#: returns how many of them went to the dead-letter topic.
Ingest = Callable[[int, list[Message]], int]


@runtime_checkable
class JoinsFeedback(Protocol):
    """A processor that also joins FeedbackEvents (the drift processor)."""

    def feedback(self, labels: list[Label]) -> None: ...


@dataclass
class LoopStats:
    """Counts of one run, for logs, tests and the benchmark."""

    messages: int = 0
    dead_letters: int = 0
    outputs: int = 0
    commits: int = 0
    restored: dict[int, str] = field(default_factory=dict)


class ProcessorLoop:
    """Run a :class:`WindowedProcessor` on a subscribed consumer until :meth:`stop`.

    :param consumer: built with :func:`schemas.kafka_config.consumer_config`.
    :param producer: built with :func:`schemas.kafka_config.producer_config`; carries
        the outputs and dead letters.
    :param record_type: the Avro record type outputs are encoded as (``DriftScore``).
    :param store: local checkpoint copies, for brokers that drop commit metadata.
    :param feedback: FeedbackEvents for the processor's join (read after each
        batch of InferenceEvents, before windows close); None: no join.
    :param ingest: handles each partition's messages instead of decoding them as
        InferenceEvents for ``processor.process`` (the merge step).
    :param parse_checkpoint: reads a checkpoint back from commit metadata.
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        processor: CommittingProcessor,
        codec: Codec,
        *,
        record_type: str,
        input_topic: str,
        output_topic: str,
        dead_letters: DeadLetterRouter,
        group_id: str,
        store: JsonCheckpointStore[Any] | None = None,
        batch_size: int = 5000,
        poll_timeout_s: float = 0.5,
        commit_interval_s: float = 5.0,
        feedback: FeedbackReader | None = None,
        ingest: Ingest | None = None,
        parse_checkpoint: Callable[[str], Committable] = Checkpoint.from_json,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.processor = processor
        self.codec = codec
        self.record_type = record_type
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.dead_letters = dead_letters
        self.group_id = group_id
        self.store = store
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.commit_interval_s = commit_interval_s
        if feedback is not None and not isinstance(processor, JoinsFeedback):
            raise TypeError(f"{type(processor).__name__} does not join FeedbackEvents")
        self.feedback = feedback
        self._windowed = processor if isinstance(processor, WindowedProcessor) else None
        if ingest is None and self._windowed is None:
            raise TypeError(f"{type(processor).__name__} takes no InferenceEvents: pass ingest")
        self.ingest = ingest or self._process
        self.parse_checkpoint = parse_checkpoint
        self.stats = LoopStats()
        self._stopping = threading.Event()
        self._to_restore: set[int] = set()
        self._last_commit = time.monotonic()
        self._delivery_errors: list[str] = []
        self._output_partition_count: int | None = None
        self._output_partitions_at = 0.0
        self._metadata_dropped: set[int] = set()

    # -- lifecycle --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and return (signal-handler safe)."""
        self._stopping.set()

    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (for a processor waiting on something)."""
        return self._stopping.is_set()

    def run(self, max_idle_polls: int | None = None) -> LoopStats:
        """Consume until :meth:`stop` (or ``max_idle_polls`` empty polls in a row)."""
        self.consumer.subscribe(
            [self.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip
        if self.feedback is not None:
            self.feedback.start()
        idle = 0
        try:
            while not self._stopping.is_set():
                got = self.step()
                idle = 0 if got else idle + 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    break
            self._commit(force=True)
        finally:
            self.consumer.close()
            if self.feedback is not None:
                self.feedback.close()
        return self.stats

    # -- one iteration ----------------------------------------------------------------

    def step(self) -> int:
        """Consume, process and (when due) commit one batch; return messages consumed."""
        messages = self.consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout_s)
        if self._to_restore:
            self._restore()
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            err = message.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                log.warning("consumer error: %s", err)
                continue
            by_partition[message.partition() or 0].append(message)
        for partition, batch in by_partition.items():
            self.stats.dead_letters += self.ingest(partition, batch)
            self.stats.messages += len(batch)
        labels = 0
        if self.feedback is not None and isinstance(self.processor, JoinsFeedback):
            read = self.feedback.read(self.batch_size)
            labels = len(read)
            self.processor.feedback(read)
        outputs = self.processor.close_ready()
        for output in outputs:
            self._produce(output)
        self.producer.poll(0)
        self._commit(force=bool(outputs))
        return sum(len(b) for b in by_partition.values()) + labels

    def _process(self, partition: int, messages: list[Message]) -> int:
        values = [m.value() for m in messages]
        offsets = np.fromiter((m.offset() for m in messages), dtype=np.int64, count=len(messages))
        batch = decode_inference_batch(values, self.codec)
        for bad in batch.errors:
            self.dead_letters.route(messages[bad.index], bad.error)
        if self._windowed is None:  # checked in __init__: ingest is given then
            raise TypeError("this loop's processor takes no InferenceEvents")
        self._windowed.process(self.input_topic, partition, batch, offsets)
        return len(batch.errors)

    def _produce(self, output: WindowOutput) -> None:
        value = self.codec.encode(self.record_type, output.value)
        if getattr(output, "broadcast", False):
            for partition in range(self._output_partitions()):
                self._send(value, output, partition)
        else:
            self._send(value, output, None)
        self.stats.outputs += 1

    def _send(self, value: bytes, output: WindowOutput, partition: int | None) -> None:
        while True:
            try:
                if partition is None:
                    self.producer.produce(
                        self.output_topic, value=value, key=output.key.encode(),
                        headers=output.headers, on_delivery=self._delivered,
                    )  # fmt: skip
                else:
                    self.producer.produce(
                        self.output_topic, value=value, key=output.key.encode(),
                        headers=output.headers, on_delivery=self._delivered, partition=partition,
                    )  # fmt: skip
                return
            except BufferError:
                self.producer.poll(0.1)

    def _output_partitions(self) -> int:
        """The output topic's partition count (asked again every minute; all topics,
        because asking for one may auto-create it)."""
        if (
            self._output_partition_count is None
            or time.monotonic() - self._output_partitions_at > 60.0
        ):
            self._output_partitions_at = time.monotonic()
            found = self.consumer.list_topics(timeout=30).topics.get(self.output_topic)
            if found is None or found.error is not None or not found.partitions:
                raise DeliveryError(f"output topic {self.output_topic} not found")
            self._output_partition_count = len(found.partitions)
        return self._output_partition_count

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))

    # -- commits ----------------------------------------------------------------------

    def _commit(self, force: bool, partitions: list[int] | None = None) -> None:
        """Flush outputs and dead letters, then commit each partition's checkpoint."""
        due = force or time.monotonic() - self._last_commit >= self.commit_interval_s
        if not due:
            return
        targets = partitions if partitions is not None else self._owned()
        checkpoints = [
            (partition, checkpoint)
            for partition in targets
            if (checkpoint := self.processor.checkpoint(self.input_topic, partition)) is not None
        ]
        self.dead_letters.flush()  # same producer: flushes the outputs too
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise DeliveryError(f"{self.record_type}s refused by {self.output_topic}: {errors[:5]}")
        # The local copies only now: the commit offset often stays put while windows
        # close (sliding windows hold it), so a copy replaces the one the committed offset
        # points at, and written before the flush it could name outputs a crash lost.
        offsets = [self._offset(partition, checkpoint) for partition, checkpoint in checkpoints]
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.stats.commits += 1
        self._last_commit = time.monotonic()

    def _offset(self, partition: int, checkpoint: Committable) -> TopicPartition:
        if self.store is not None:
            self.store.save(self.input_topic, partition, checkpoint)
        metadata = checkpoint.to_json()
        if len(metadata) > 4000:  # Kafka's default offset.metadata.max.bytes is 4096
            if partition not in self._metadata_dropped:
                self._metadata_dropped.add(partition)
                log.warning(
                    "partition %s: checkpoint of %d bytes is over the commit metadata "
                    "limit; committing without it (restarts rely on the state directory "
                    "%s)", partition, len(metadata), self.store.root if self.store else None,
                )  # fmt: skip
            metadata = ""
        return TopicPartition(
            self.input_topic, partition, checkpoint.commit_offset, metadata=metadata
        )

    def _owned(self) -> list[int]:
        return sorted(p for (t, p) in self.processor.partitions if t == self.input_topic)

    # -- rebalances -------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # committed() is called after consume() returns, outside the callback
        self._to_restore.update(tp.partition for tp in partitions)
        for tp in partitions:  # no events processed until restored
            self.processor.assign(self.input_topic, tp.partition, None)

    def _restore(self) -> None:
        wanted = sorted(self._to_restore)
        self._to_restore.clear()
        committed = self.consumer.committed(
            [TopicPartition(self.input_topic, p) for p in wanted], timeout=30
        )
        for tp in committed:
            checkpoint = self._checkpoint_of(tp)
            self.processor.assign(self.input_topic, tp.partition, checkpoint)
            self.stats.restored[tp.partition] = (
                "fresh" if tp.offset < 0 else "checkpoint" if checkpoint else "no checkpoint"
            )
            if tp.offset >= 0 and checkpoint is None:
                log.warning(
                    "partition %s: committed offset %s without a checkpoint; replaying "
                    "without the closed-window frontier", tp.partition, tp.offset,
                )  # fmt: skip

    def _checkpoint_of(self, tp: TopicPartition) -> Committable | None:
        if tp.offset < 0:
            return None
        if tp.metadata:
            try:
                checkpoint = self.parse_checkpoint(tp.metadata)
                if checkpoint.commit_offset == tp.offset:
                    return checkpoint
            except CheckpointError as exc:
                log.warning("partition %s: %s", tp.partition, exc)
        if self.store is not None:
            return self.store.load(self.input_topic, tp.partition, tp.offset)
        return None

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        mine = [tp.partition for tp in partitions]
        restoring = [p for p in mine if p in self._to_restore]
        self._to_restore.difference_update(restoring)
        try:
            self._commit(force=True, partitions=[p for p in mine if p not in restoring])
        except KafkaException as exc:
            log.warning("commit on revoke failed (replay will cover it): %s", exc)
        for p in mine:
            self.processor.revoke(self.input_topic, p)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.processor.revoke(self.input_topic, tp.partition)
            self._to_restore.discard(tp.partition)


#: The drift processor's loop (the name it had before the loop served the SLO processor too).
DriftLoop = ProcessorLoop
