"""Rebuild the SLO processor's burn-rate history from its own output topic.

Burn rates look back over up to 6 h of closed windows; that history lives in memory on
the instance that owns a model's partition. Kafka is the system of record: when
partitions are assigned (start, restart, rebalance), the processor re-reads the
SloWindows of the look-back from ``slo.windows`` (its own outputs, and those of whoever
owned the partition before) and seeds its history from their counts, so a restart does
not make a long look-back forget an ongoing burn.

Where to start reading is found with ``offsets_for_times`` on the records' timestamps
(produce time), ``keep_ms`` plus a slack before now; a broker that cannot answer is read
from the beginning. Reading stops after ``idle_polls`` empty polls in a row: a restore
that misses a record written at that very moment only understates the look-back, as
without a restore.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas.codec import Codec
from schemas.exceptions import DecodeError

log = logging.getLogger(__name__)

#: How much older than the look-back a record's produce time may be and still be read
#: (windows close ``lateness`` after their end; producers' clocks drift).
SLACK_MS = 3_600_000


class SloWindowReader:
    """Reads recent SloWindow records of ``topic`` with a short-lived consumer.

    :param consumer_factory: makes an unsubscribed consumer (assigned, never committing).
    :param keep_ms: the longest look-back the processor needs.
    """

    def __init__(
        self,
        consumer_factory: Callable[[], Consumer],
        topic: str,
        codec: Codec,
        keep_ms: int,
        *,
        idle_polls: int = 2,
        poll_timeout_s: float = 0.5,
        timeout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer_factory = consumer_factory
        self.topic = topic
        self.codec = codec
        self.keep_ms = keep_ms
        self.idle_polls = idle_polls
        self.poll_timeout_s = poll_timeout_s
        self.timeout_s = timeout_s
        self.clock = clock

    def __call__(self) -> Iterator[dict[str, Any]]:
        """Every decodable SloWindow written in the last ``keep_ms`` (+ slack)."""
        consumer = self.consumer_factory()
        try:
            consumer.assign(self._starts(consumer))
            idle = 0
            deadline = time.monotonic() + self.timeout_s
            while idle < self.idle_polls and time.monotonic() < deadline:
                messages = consumer.consume(num_messages=5000, timeout=self.poll_timeout_s)
                good = [m for m in messages if m.error() is None]
                idle = 0 if good else idle + 1
                for message in good:
                    try:
                        yield self.codec.decode(message.value() or b"").value
                    except DecodeError as exc:
                        log.warning("skipping an undecodable record of %s: %s", self.topic, exc)
        finally:
            consumer.close()

    def _starts(self, consumer: Consumer) -> list[TopicPartition]:
        metadata = consumer.list_topics(self.topic, timeout=10)
        partitions = sorted(metadata.topics[self.topic].partitions)
        since = int(self.clock() * 1000) - self.keep_ms - SLACK_MS
        wanted = [TopicPartition(self.topic, p, since) for p in partitions]
        try:
            found = consumer.offsets_for_times(wanted, timeout=10)
        except KafkaException as exc:
            log.info("offsets_for_times unsupported (%s): reading %s from the start", exc,
                     self.topic)  # fmt: skip
            return [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions]
        return [tp for tp in found if tp.offset >= 0]
