"""A consumer keeps up through 10,000 mixed good and bad records on the real broker."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from confluent_kafka import Message, Producer

from schemas import dead_letters as dl
from schemas.codec import SINGLE_OBJECT_MAGIC, SingleObjectCodec
from schemas.consumer import RecordDecoder, consume_decoded
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS
from tests.integration.conftest import assigned_consumer, read_all
from tests.records_factory import inference_event, samples

TOTAL = 10_000
CODEC = SingleObjectCodec()


def _record(i: int) -> tuple[bytes, str | None]:
    """Record number ``i`` and, for a bad one, the reason it must be dead-lettered."""
    good = CODEC.encode("InferenceEvent", inference_event(i))
    match i % 10:
        case 1:
            return b"\x00" + good[1:], "bad_magic"
        case 3:
            return SINGLE_OBJECT_MAGIC + b"\xee" * 8 + good[10:], "unknown_schema"
        case 5:
            return good[: len(good) // 2], "truncated"
        case 7:
            nan = inference_event(i, features={"feature_00": math.nan})
            return CODEC.encode("InferenceEvent", nan, check=False), "invalid_value"
        case 9 if i % 20 == 9:
            return CODEC.encode("FeedbackEvent", samples()["FeedbackEvent"]), "wrong_record_type"
        case _:
            return good, None


def test_consumer_routes_all_bad_and_processes_all_good(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    unique: Callable[[str], str],
) -> None:
    events, dead = make_topics(INFERENCE_EVENTS, DEAD_LETTERS)
    producer = Producer(producer_config(kafka_settings))
    expected_bad: dict[int, str] = {}
    for i in range(TOTAL):
        value, reason = _record(i)
        if reason:
            expected_bad[i] = reason
        # The record number rides in a header so the test can match dead letters back.
        producer.produce(events, value=value, key=b"m%d" % (i % 12), headers=[("i", b"%d" % i)])
        producer.poll(0)
    assert producer.flush(30) == 0

    consumer = assigned_consumer(kafka_settings, events, INFERENCE_EVENTS.partitions, unique("g"))
    router = dl.DeadLetterRouter(Producer(producer_config(kafka_settings)), dead)
    decoder = RecordDecoder(CODEC, router, {events: "InferenceEvent"})
    good_ids: set[str] = set()
    seen = 0
    empty_polls = 0
    while seen < TOTAL and empty_polls < 60:
        batch = consume_decoded(consumer, decoder, max_records=1000, timeout_s=0.5)
        seen += len(batch.records) + batch.dead_letters
        empty_polls = 0 if batch.records or batch.dead_letters else empty_polls + 1
        good_ids.update(r.value["event_id"] for r in batch.records)
    router.flush(30)
    consumer.close()

    assert seen == TOTAL
    assert len(good_ids) == TOTAL - len(expected_bad)
    assert router.sent == len(expected_bad)

    dlq = assigned_consumer(kafka_settings, dead, DEAD_LETTERS.partitions, unique("g"))
    letters: list[Message] = read_all(dlq, len(expected_bad))  # type: ignore[assignment]
    dlq.close()
    got: dict[int, str] = {}
    for msg in letters:
        headers = dict(msg.headers() or [])
        index = int(headers["i"] or b"-1")
        why = headers[dl.REASON]
        assert isinstance(why, bytes)
        got[index] = why.decode()
        assert headers[dl.SOURCE_TOPIC] == events.encode()
        assert msg.value() == _record(index)[0]  # original bytes
    assert got == expected_bad
    assert Counter(got.values()) == Counter(expected_bad.values())
