"""The shadow comparison job (``driftline shadow run``): inference.events in,
ShadowComparison records on ``shadow.comparisons`` and Prometheus gauges out.

A consumer group on ``inference.events`` (keyed by model name, so a model's served and
shadow answers share a partition and one instance sees both). Records are decoded one
by one (:class:`~schemas.consumer.RecordDecoder`: bad ones go to the dead-letter topic),
joined by :class:`~stream.shadow_compare.ShadowJoin`, and each closed window is published
keyed by model name. Offsets are committed after the outputs are acknowledged and never
past an answer still held (pending or in an open window), so a restart re-reads what it
held: at-least-once, the natural key is (model, window_start). A rebalance drops the held
state; the partitions' new owners re-read it from the committed offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from schemas.catalog import INFERENCE_EVENT, SHADOW_COMPARISON
from schemas.codec import Codec, make_codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.exceptions import DeliveryError
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS, SHADOW_COMPARISONS
from stream import shadow_metrics as m
from stream.settings import ShadowSettings
from stream.shadow_compare import Answer, ShadowJoin, WindowComparison

log = logging.getLogger(__name__)


def observe(record: dict[str, Any]) -> None:
    """Set the gauges of one published window (absent values leave a gauge as it was)."""
    model = record["model_name"]
    m.WINDOWS.labels(model).inc()
    m.PAIRS.labels(model).set(record["pair_count"])
    for gauge, name in (
        (m.AGREEMENT, "agreement_rate"),
        (m.PREDICTION_SHIFT, "prediction_shift"),
        (m.PROBABILITY_SHIFT, "probability_shift"),
    ):
        if record[name] is not None:
            gauge.labels(model).set(record[name])
    for side, name in (("served", "champion"), ("shadow", "shadow")):
        if record[f"{name}_latency_p99_ms"] is not None:
            m.LATENCY_P99.labels(model, side).set(record[f"{name}_latency_p99_ms"])
        m.UNMATCHED.labels(model, side).set(record[f"unmatched_{name}_count"])


class ShadowLoop:
    """Consume, join, publish, commit until :meth:`stop`."""

    record_type = SHADOW_COMPARISON

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: ShadowSettings,
        codec: Codec | None = None,
        on_window: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kafka = kafka
        self.settings = settings
        self.codec = codec or make_codec()
        self.on_window = on_window
        self.input_topic = INFERENCE_EVENTS.prefixed(kafka.topic_prefix).name
        self.output_topic = SHADOW_COMPARISONS.prefixed(kafka.topic_prefix).name
        self.join = self._new_join()
        self.positions: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self.published = 0
        self._stop = threading.Event()

    def _new_join(self) -> ShadowJoin:
        s = self.settings
        return ShadowJoin(round(s.window_s * 1000), round(s.join_window_s * 1000), s.max_pending)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Run until :meth:`stop`; return how many windows were published."""
        settings = self.settings
        consumer = Consumer(consumer_config(self.kafka, settings.group_id))
        producer = Producer(producer_config(self.kafka))
        dead_letters = DeadLetterRouter(
            producer, DEAD_LETTERS.prefixed(self.kafka.topic_prefix).name, settings.group_id
        )
        decoder = RecordDecoder(self.codec, dead_letters, {self.input_topic: INFERENCE_EVENT})

        def revoked(_consumer: Consumer, _partitions: list[TopicPartition]) -> None:
            self.join, self.positions, self.committed = self._new_join(), {}, {}

        consumer.subscribe([self.input_topic], on_revoke=revoked, on_lost=revoked)
        last_commit = time.monotonic()
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(500, settings.poll_timeout_s):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF and (
                            err.fatal() or not err.retriable()
                        ):
                            raise KafkaException(err)
                        continue
                    partition, offset = msg.partition() or 0, msg.offset() or 0
                    self.positions[partition] = offset + 1
                    decoded = decoder.decode_one(msg)
                    if decoded is None:
                        continue
                    answer = Answer.of(decoded.value, partition, offset)
                    if answer is not None:
                        self.join.add(answer)
                closed = self.join.close_ready()
                for window in closed:
                    self._publish(producer, window)
                due = time.monotonic() - last_commit >= settings.commit_interval_s
                if closed or due:
                    if self._flush(producer, dead_letters):
                        self._commit(consumer)
                    last_commit = time.monotonic()
        finally:
            if self._flush(producer, dead_letters):
                self._commit(consumer)
            consumer.close()
        return self.published

    def _publish(self, producer: Producer, window: WindowComparison) -> None:
        record = window.record(self.join.join_window_ms)
        producer.produce(
            self.output_topic,
            self.codec.encode(SHADOW_COMPARISON, record),
            key=window.model.encode(),
        )
        producer.poll(0)
        self.published += 1
        observe(record)
        if self.on_window is not None:
            self.on_window(record)

    def _flush(self, producer: Producer, dead_letters: DeadLetterRouter) -> bool:
        """Wait for outputs and dead letters; False (no commit) if Kafka did not take them."""
        remaining = producer.flush(30)
        try:
            dead_letters.flush()
        except DeliveryError as exc:
            log.warning("dead letters not acknowledged (%s); not committing", exc)
            return False
        if remaining:
            log.warning("%d ShadowComparisons not acknowledged; not committing", remaining)
            return False
        return True

    def _commit(self, consumer: Consumer) -> None:
        """Commit each partition up to, not past, the oldest answer still held."""
        low = self.join.low_offsets()
        offsets = []
        for partition, position in self.positions.items():
            target = min(low.get(partition, position), position)
            if self.committed.get(partition) != target:
                offsets.append(TopicPartition(self.input_topic, partition, target))
                self.committed[partition] = target
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
