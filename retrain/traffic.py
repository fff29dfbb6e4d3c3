"""Recent labelled traffic: InferenceEvents joined with their FeedbackEvents, from Kafka.

Live reads (:func:`read_window`) start each partition at the first offset whose record
time is at or after the window start (``offsets_for_times``; the embedded broker answers
the earliest offset, which is only slower: the event-time filter below decides) and read
until every partition reports its end. What was read is recorded as exact
``[start, end)`` offset ranges; :func:`read_ranges` reads exactly those again, which is
what makes a replay identical.

The join (:func:`join_labelled`) is a pure function of the records: InferenceEvents of
the model with ``outcome=ok``, not from the shadow, with ``event_time`` in the window and
every feature present and finite; the first event per request id (partition, offset
order) counts. A FeedbackEvent's label must be 0 or 1 (number or string); the last one
per request id counts. Undecodable records are skipped and counted here: the stream
processors already send them to the dead-letter topic.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from retrain.exceptions import ReplayError
from retrain.lineage import OffsetRange
from schemas.breast_cancer import FloatArray, IntArray
from schemas.codec import Codec
from schemas.exceptions import DecodeError

log = logging.getLogger(__name__)

#: Longest wait of one ``consume`` call: short, because ``consume`` waits its whole timeout
#: unless 1000 records arrive, and partition ends come in tens of milliseconds.
_POLL_S = 0.05

#: (partition, offset, value bytes) of one consumed record.
RawRecord = tuple[int, int, bytes]


def _starts(consumer: Consumer, topic: str, partitions: int, start_ms: int) -> dict[int, int]:
    """First offset per partition at or after ``start_ms`` (no such record: the end)."""
    wanted = [TopicPartition(topic, p, max(0, start_ms)) for p in range(partitions)]
    found = consumer.offsets_for_times(wanted, timeout=10.0)
    starts: dict[int, int] = {}
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
        if tp.offset >= 0:
            starts[tp.partition] = tp.offset
        else:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10.0
            )
            starts[tp.partition] = max(0, high)
    return starts


def read_window(
    consumer: Consumer,
    topic: str,
    partitions: int,
    start_ms: int,
    idle_s: float,
    max_wait_s: float = 60.0,
) -> tuple[list[RawRecord], list[OffsetRange]]:
    """Every record from the window start to each partition's end, and the ranges read.

    ``consumer`` must have ``enable.partition.eof=true``; it is assigned (no group).
    """
    starts = _starts(consumer, topic, partitions, start_ms)
    ends = dict(starts)
    consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
    records: list[RawRecord] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + max_wait_s
    last_record = time.monotonic()
    try:
        while len(at_end) < len(starts) and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=_POLL_S)
            if not batch and time.monotonic() - last_record > idle_s:
                log.warning(
                    "no end-of-partition from %s after %.1f s idle: stopping", topic, idle_s
                )
                break
            for msg in batch:
                err = msg.error()
                partition = msg.partition() or 0
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(partition)
                        continue
                    if err.fatal() or not err.retriable():
                        raise KafkaException(err)
                    continue
                offset = msg.offset() or 0
                records.append((partition, offset, msg.value() or b""))
                ends[partition] = max(ends[partition], offset + 1)
                at_end.discard(partition)
                last_record = time.monotonic()
    finally:
        consumer.unassign()
    ranges = [OffsetRange(topic=topic, partition=p, start=starts[p], end=ends[p]) for p in starts]
    return records, ranges


def read_ranges(
    consumer: Consumer, ranges: Sequence[OffsetRange], timeout_s: float = 60.0
) -> list[RawRecord]:
    """Exactly the records of ``ranges`` (end exclusive).

    :raises ReplayError: a range can no longer be read completely (retention deleted it).
    """
    pending = {(r.topic, r.partition): r for r in ranges if r.end > r.start}
    if not pending:
        return []
    consumer.assign([TopicPartition(t, p, r.start) for (t, p), r in pending.items()])
    records: list[RawRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=_POLL_S):
                err = msg.error()
                if err is not None:
                    if err.fatal() or not (
                        err.retriable() or err.code() == KafkaError._PARTITION_EOF
                    ):
                        raise KafkaException(err)
                    continue
                key = (msg.topic() or "", msg.partition() or 0)
                wanted = pending.get(key)
                offset = msg.offset() or 0
                if wanted is None or offset >= wanted.end:
                    continue
                if offset < wanted.start:
                    continue
                records.append((key[1], offset, msg.value() or b""))
                if offset + 1 >= wanted.end:
                    del pending[key]
    finally:
        consumer.unassign()
    if pending:
        missing = ", ".join(r.describe() for r in pending.values())
        raise ReplayError(
            f"could not read these ranges completely within {timeout_s:g} s: {missing}"
        )
    return records


@dataclass(frozen=True)
class LabelledRows:
    """Recent labelled rows, sorted by request id (the order never depends on reading)."""

    request_ids: tuple[str, ...]
    x: FloatArray
    y: IntArray
    skipped_undecodable: int

    def __len__(self) -> int:
        return len(self.request_ids)


def _label(value: object) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        return int(value) if value in ("0", "1") else None
    if isinstance(value, float | int) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    return None


def join_labelled(
    inference: Iterable[RawRecord],
    feedback: Iterable[RawRecord],
    codec: Codec,
    *,
    model_name: str,
    features: Sequence[str],
    window_start_ms: int,
    window_end_ms: int,
    max_rows: int,
) -> LabelledRows:
    """InferenceEvents of the window joined with their labels, by request id (see module)."""
    skipped = 0
    labels: dict[str, int] = {}
    for _partition, _offset, value in sorted(feedback, key=lambda r: (r[0], r[1])):
        try:
            event = codec.decode(value).value
        except DecodeError:
            skipped += 1
            continue
        label = _label(event.get("label"))
        if event.get("model_name") == model_name and label is not None:
            labels[str(event["request_id"])] = label
    rows: dict[str, tuple[int, list[float], int]] = {}
    for _partition, _offset, value in sorted(inference, key=lambda r: (r[0], r[1])):
        try:
            event = codec.decode(value).value
        except DecodeError:
            skipped += 1
            continue
        request_id = str(event.get("request_id"))
        if (
            request_id in rows
            or request_id not in labels
            or event.get("model_name") != model_name
            or event.get("outcome") != "ok"
            or event.get("variant") == "shadow"
            or not window_start_ms <= int(event.get("event_time", -1)) <= window_end_ms
        ):
            continue
        values = event.get("features") or {}
        row = [float(values.get(name, math.nan)) for name in features]
        if not all(math.isfinite(v) for v in row):
            continue
        rows[request_id] = (int(event["event_time"]), row, labels[request_id])
    newest = sorted(rows.items(), key=lambda item: (-item[1][0], item[0]))[:max_rows]
    kept = sorted(newest, key=lambda item: item[0])
    ids = tuple(request_id for request_id, _ in kept)
    width = len(features)
    x = np.array([row for _, (_, row, _) in kept], dtype=np.float64).reshape(len(kept), width)
    y = np.array([label for _, (_, _, label) in kept], dtype=np.int64)
    return LabelledRows(ids, x, y, skipped)
