"""Dead letters: records that cannot be used go to one topic, with the reason, never lost.

A dead letter keeps the original key, value bytes and headers untouched (so it can be
replayed once the cause is fixed) and adds headers saying why and where it came from:

====================================  ==============================================
``driftline.dlq.reason``              short code, e.g. ``truncated``, ``invalid_value``
``driftline.dlq.detail``              the human-readable error message
``driftline.dlq.source.topic``        topic the record was read from
``driftline.dlq.source.partition``    its partition (decimal)
``driftline.dlq.source.offset``       its offset (decimal)
``driftline.dlq.group``               consumer group that routed it, when given: each
                                      group reading a topic (drift, SLO) routes its
                                      own copy of a bad record
====================================  ==============================================

Every dead letter is counted in ``driftline_dead_letters_total{reason, topic}``.
"""

from __future__ import annotations

import threading
from typing import Final, Protocol

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

from schemas.exceptions import DeliveryError

HEADER_PREFIX: Final = "driftline.dlq."
REASON: Final = HEADER_PREFIX + "reason"
DETAIL: Final = HEADER_PREFIX + "detail"
SOURCE_TOPIC: Final = HEADER_PREFIX + "source.topic"
SOURCE_PARTITION: Final = HEADER_PREFIX + "source.partition"
SOURCE_OFFSET: Final = HEADER_PREFIX + "source.offset"
GROUP: Final = HEADER_PREFIX + "group"

#: Header values are bytes; a detail this long is cut (the original bytes carry the rest).
_MAX_DETAIL: Final = 1000

DEAD_LETTERS_TOTAL: Final = Counter(
    "driftline_dead_letters",
    "Records sent to the dead-letter topic, by reason and source topic.",
    ["reason", "topic"],
)

Headers = list[tuple[str, str | bytes | None]]


class DeadLetterReason(Protocol):
    """Why a record is dead-lettered: its ``reason`` code; ``str()`` of it is the detail.

    A :class:`~schemas.exceptions.DecodeError`, or an error of processing a record that
    decoded (``retrain.retry_policy.ProcessingFailedError``).
    """

    @property
    def reason(self) -> str: ...


class SourceRecord(Protocol):
    """The parts of a consumed Kafka message a dead letter needs (``confluent_kafka.Message``)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(
        self,
    ) -> dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None: ...


def dead_letter_headers(record: SourceRecord, error: DeadLetterReason) -> Headers:
    """The original headers followed by Driftline's ``driftline.dlq.*`` headers."""
    headers: Headers = []
    original = record.headers() or []
    pairs = original.items() if isinstance(original, dict) else original
    for name, value in pairs:
        if isinstance(value, str):
            value = value.encode()
        headers.append((name, value or b""))
    headers += [
        (REASON, error.reason.encode()),
        (DETAIL, str(error)[:_MAX_DETAIL].encode()),
        (SOURCE_TOPIC, (record.topic() or "").encode()),
        (SOURCE_PARTITION, str(record.partition()).encode()),
        (SOURCE_OFFSET, str(record.offset()).encode()),
    ]
    return headers


class DeadLetterRouter:
    """Send unusable records to the dead-letter topic and count them.

    Sending is asynchronous; :meth:`flush` waits for every dead letter and raises if any
    was not acknowledged. A consumer must call it before committing offsets past the bad
    records, or a crash in between could lose them.

    :param producer: a producer built with :func:`schemas.kafka_config.producer_config`.
    :param topic: the (prefixed) name of the dead-letter topic.
    :param group: the consumer group routing, added as ``driftline.dlq.group``; several
        groups read ``inference.events`` and each routes a bad record once, so
        (source topic, partition, offset, group) identifies a dead letter.
    """

    def __init__(self, producer: Producer, topic: str, group: str | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.group = group
        self.sent = 0
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def route(self, record: SourceRecord, error: DeadLetterReason) -> None:
        """Queue ``record`` for the dead-letter topic with ``error``'s reason."""
        source = record.topic() or ""
        key = record.key()
        value = record.value()
        headers = dead_letter_headers(record, error)
        if self.group is not None:
            headers.append((GROUP, self.group.encode()))
        self._produce(
            key=key if key is not None else source.encode(),
            value=value,
            headers=headers,
        )
        DEAD_LETTERS_TOTAL.labels(reason=error.reason, topic=source).inc()
        self.sent += 1

    def _produce(self, key: str | bytes, value: str | bytes | None, headers: Headers) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                return
            except BufferError:
                self.producer.poll(0.1)  # local queue full: let deliveries drain

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            with self._lock:
                self._failures.append(f"offset {msg.offset()}: {err}")

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every dead letter is acknowledged.

        :raises DeliveryError: some were refused or are still in flight after ``timeout_s``.
        """
        remaining = self.producer.flush(timeout_s)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures or remaining:
            raise DeliveryError(
                f"{len(failures)} dead letters refused, {remaining} still in flight "
                f"to {self.topic}: {'; '.join(failures[:5])}"
            )
