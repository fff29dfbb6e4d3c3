"""Dead-letter routing: every bad-record case lands with its bytes, headers and count."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas import dead_letters as dl
from schemas.codec import SINGLE_OBJECT_MAGIC, SingleObjectCodec
from schemas.consumer import RecordDecoder
from tests.records_factory import inference_event, samples

CODEC = SingleObjectCodec()


@dataclass
class FakeMessage:
    """A consumed message (our own logic under test, not the broker's)."""

    _value: bytes
    _topic: str = "t.inference.events"
    _partition: int = 2
    _offset: int = 41
    _key: bytes | None = b"fraud-detector"
    _headers: list[tuple[str, str | bytes | None]] = field(
        default_factory=lambda: [("traceparent", b"00-abc-01")]
    )

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_764_000_000_000)


@dataclass
class RecordingProducer:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.sent.append({"topic": topic, **kwargs})

    def flush(self, timeout: float = 0) -> int:
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0


def _good() -> bytes:
    return CODEC.encode("InferenceEvent", inference_event(1))


def _bad_cases() -> dict[str, bytes]:
    good = _good()
    nan = CODEC.encode("InferenceEvent", inference_event(2, latency_ms=math.nan), check=False)
    return {
        "bad_magic": b"\x00" + good[1:],
        "unknown_schema": SINGLE_OBJECT_MAGIC + b"\xff" * 8 + good[10:],
        "truncated": good[:-1],
        "invalid_value": nan,
        "wrong_record_type": CODEC.encode("FeedbackEvent", samples()["FeedbackEvent"]),
        "malformed": good + b"\x01",
    }


def _count(reason: str, topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "driftline_dead_letters_total", {"reason": reason, "topic": topic}
    )
    return value or 0.0


@pytest.mark.parametrize("reason", list(_bad_cases()))
def test_each_bad_record_is_routed_with_its_reason(reason: str) -> None:
    producer = RecordingProducer()
    router = dl.DeadLetterRouter(producer, "t.driftline.dead-letters")  # type: ignore[arg-type]
    decoder = RecordDecoder(CODEC, router, {"t.inference.events": "InferenceEvent"})
    message = FakeMessage(_bad_cases()[reason], _topic=f"t-{reason}.inference.events")
    decoder.expected[message.topic()] = "InferenceEvent"
    before = _count(reason, message.topic())

    assert decoder.decode_one(message) is None

    (sent,) = producer.sent
    assert sent["topic"] == "t.driftline.dead-letters"
    assert sent["value"] == message.value()  # original bytes, untouched
    assert sent["key"] == b"fraud-detector"
    headers = dict(sent["headers"])
    assert headers["traceparent"] == b"00-abc-01"  # original headers kept
    assert headers[dl.REASON] == reason.encode()
    assert headers[dl.SOURCE_TOPIC] == message.topic().encode()
    assert headers[dl.SOURCE_PARTITION] == b"2"
    assert headers[dl.SOURCE_OFFSET] == b"41"
    assert headers[dl.DETAIL]
    assert _count(reason, message.topic()) == before + 1


def test_a_good_record_passes_and_is_not_counted() -> None:
    producer = RecordingProducer()
    router = dl.DeadLetterRouter(producer, "dlq")  # type: ignore[arg-type]
    decoded = RecordDecoder(CODEC, router).decode_one(FakeMessage(_good()))
    assert decoded is not None
    assert decoded.value == inference_event(1)
    assert (decoded.partition, decoded.offset, decoded.key) == (2, 41, b"fraud-detector")
    assert producer.sent == [] and router.sent == 0


def test_missing_key_uses_the_source_topic() -> None:
    producer = RecordingProducer()
    router = dl.DeadLetterRouter(producer, "dlq")  # type: ignore[arg-type]
    RecordDecoder(CODEC, router).decode_one(FakeMessage(b"junk", _key=None))
    assert producer.sent[0]["key"] == b"t.inference.events"


def test_the_routing_group_is_named_when_given() -> None:
    producer = RecordingProducer()
    router = dl.DeadLetterRouter(producer, "dlq", group="driftline-slo")  # type: ignore[arg-type]
    RecordDecoder(CODEC, router).decode_one(FakeMessage(b"junk"))
    assert dict(producer.sent[0]["headers"])[dl.GROUP] == b"driftline-slo"
    anonymous = RecordingProducer()
    plain = dl.DeadLetterRouter(anonymous, "dlq")  # type: ignore[arg-type]
    RecordDecoder(CODEC, plain).decode_one(FakeMessage(b"junk"))
    assert dl.GROUP not in dict(anonymous.sent[0]["headers"])
