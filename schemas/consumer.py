"""Decode batches of consumed records; route the bad ones to dead letters and carry on.

A processor's loop is ``consume -> decode_batch -> process -> flush dead letters ->
commit``. A record that cannot be used never stops the loop and never disappears: it is
in the dead-letter topic (with its reason) before the offset past it is committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from schemas.codec import Codec
from schemas.dead_letters import DeadLetterRouter, SourceRecord
from schemas.exceptions import DecodeError, WrongRecordTypeError
from schemas.inference_batch import InferenceBatch, decode_inference_batch


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A good record with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int
    record_type: str
    value: dict[str, Any]


@dataclass
class BatchResult:
    """What one :meth:`RecordDecoder.decode_batch` call produced."""

    records: list[DecodedRecord]
    dead_letters: int


class RecordDecoder:
    """Decode records of known topics; send undecodable and invalid ones to dead letters.

    :param codec: how records are encoded.
    :param dead_letters: where bad records go.
    :param expected: topic -> record type it must carry; a record of another type is a
        dead letter (``wrong_record_type``). Topics not listed accept any Driftline record.
    """

    def __init__(
        self,
        codec: Codec,
        dead_letters: DeadLetterRouter,
        expected: Mapping[str, str] | None = None,
    ) -> None:
        self.codec = codec
        self.dead_letters = dead_letters
        self.expected = dict(expected or {})

    def decode_one(self, record: SourceRecord) -> DecodedRecord | None:
        """The decoded record, or None once it has been routed to dead letters."""
        topic = record.topic() or ""
        raw = record.value()
        data = raw.encode() if isinstance(raw, str) else (raw or b"")
        try:
            decoded = self.codec.decode(data)
            want = self.expected.get(topic)
            if want is not None and decoded.record_type != want:
                raise WrongRecordTypeError(
                    f"{decoded.record_type} on {topic}, which carries {want}"
                )
        except DecodeError as exc:
            self.dead_letters.route(record, exc)
            return None
        key = record.key()
        timestamp = getattr(record, "timestamp", None)
        ts = timestamp()[1] if callable(timestamp) else -1
        return DecodedRecord(
            topic=topic,
            partition=record.partition() or 0,
            offset=record.offset() or 0,
            key=key.encode() if isinstance(key, str) else key,
            timestamp_ms=ts,
            record_type=decoded.record_type,
            value=decoded.value,
        )

    def decode_batch(self, messages: Iterable[Message]) -> BatchResult:
        """Decode a batch from ``Consumer.consume``; partition-EOF events are skipped.

        :raises KafkaException: a fatal consumer error (not a bad record).
        """
        records: list[DecodedRecord] = []
        before = self.dead_letters.sent
        for message in _records_only(messages):
            decoded = self.decode_one(message)
            if decoded is not None:
                records.append(decoded)
        return BatchResult(records, self.dead_letters.sent - before)

    def decode_inference_columns(self, messages: Iterable[Message]) -> InferenceColumns:
        """A batch of InferenceEvent messages as columns; bad ones go to dead letters.

        What the drift and SLO processors use: no dict per record, features as numpy
        matrices (:mod:`schemas.inference_batch`). A record of another type is a dead
        letter (``wrong_record_type``), whatever ``expected`` says.

        :raises KafkaException: a fatal consumer error (not a bad record).
        """
        good = list(_records_only(messages))
        values = [m.value() for m in good]
        batch = decode_inference_batch(
            [v.encode() if isinstance(v, str) else v for v in values], self.codec
        )
        for bad in batch.errors:
            self.dead_letters.route(good[bad.index], bad.error)
        return InferenceColumns([good[i] for i in batch.index.tolist()], batch)


@dataclass(frozen=True, slots=True)
class InferenceColumns:
    """Decoded InferenceEvents: ``messages[r]`` is where row ``r`` of ``batch`` came from."""

    messages: list[Message]
    batch: InferenceBatch


def _records_only(messages: Iterable[Message]) -> Iterable[Message]:
    """The messages that carry records: partition-EOF and retriable errors are dropped.

    :raises KafkaException: a fatal consumer error.
    """
    for message in messages:
        err = message.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                continue
            if err.fatal() or not err.retriable():
                raise KafkaException(err)
            continue
        yield message


def consume_decoded(
    consumer: Consumer, decoder: RecordDecoder, max_records: int = 500, timeout_s: float = 1.0
) -> BatchResult:
    """One ``consume`` call, decoded: the building block of every processor loop."""
    return decoder.decode_batch(consumer.consume(num_messages=max_records, timeout=timeout_s))
