"""The basics every component relies on, proved on the real broker.

Explicit topics, keyed records, a consumer group whose two members split the
partitions, manual commits, and a restarted consumer resuming from its commit.

Members leave one at a time, as in a rolling restart: on the embedded broker a group
whose members all leave at the same moment can keep a departed leader and never assign
the next member (docs/decisions.md, "Embedded broker").
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from confluent_kafka import Consumer, Message, Producer

from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from tests.integration.kafka_helpers import Record, poll_until, wait_for_assignment

KEYS = [f"model-{i}" for i in range(12)]


def _produce(producer: Producer, topic: str, batch: str, rounds: int) -> int:
    for round_ in range(rounds):
        for key in KEYS:
            producer.produce(topic, key=key, value=f"{batch}:{key}:{round_}".encode())
    assert producer.flush(30) == 0
    return rounds * len(KEYS)


def test_group_splits_partitions_commits_and_resumes(
    kafka_settings: KafkaSettings, unique: Callable[[str], str]
) -> None:
    spec = INFERENCE_EVENTS.prefixed(kafka_settings.topic_prefix)
    ensure_topics(make_admin(kafka_settings), [spec])
    producer = Producer(producer_config(kafka_settings))
    first_batch = _produce(producer, spec.name, "A", rounds=5)

    group = unique("group")
    first = Consumer(consumer_config(kafka_settings, group))
    second = Consumer(consumer_config(kafka_settings, group))
    for consumer in (first, second):
        consumer.subscribe([spec.name])
    messages = wait_for_assignment([first, second])

    a = {tp.partition for tp in first.assignment()}
    b = {tp.partition for tp in second.assignment()}
    assert a and b, "both members own partitions"
    assert not a & b, "no partition is owned twice"
    assert a | b == set(range(spec.partitions))

    # Consume batch A, committing each record after it is processed.
    messages += poll_until([first, second], lambda got: len(messages) + len(got) >= first_batch)
    _commit_each(messages, first, second, a)
    seen = [Record.of(m) for m in messages]
    assert sorted(r.value for r in seen) == sorted(
        f"A:{k}:{i}".encode() for i in range(5) for k in KEYS
    )

    # Keyed records keep their order within a key.
    rounds_by_key: dict[bytes, list[int]] = defaultdict(list)
    for rec in seen:
        rounds_by_key[rec.key].append(int(rec.value.rsplit(b":", 1)[1]))
    for record_key, rounds in rounds_by_key.items():
        assert rounds == sorted(rounds), record_key.decode()

    # Rolling stop: the survivor takes over every partition before it leaves too.
    first.close()
    deadline = time.monotonic() + 60
    while len(second.assignment()) < spec.partitions and time.monotonic() < deadline:
        assert second.poll(0.1) is None or not seen, "batch A was fully consumed already"
    assert len(second.assignment()) == spec.partitions
    second.close()

    # New records arrive while the group is down; a restarted member resumes from the
    # commits: it reads exactly batch B, nothing of A again and nothing lost.
    second_batch = _produce(producer, spec.name, "B", rounds=3)
    restarted = Consumer(consumer_config(kafka_settings, group))
    restarted.subscribe([spec.name])
    rest = [Record.of(m) for m in poll_until([restarted], lambda got: len(got) >= second_batch)]
    extra = restarted.poll(2.0)  # anything beyond batch B would be a re-delivery of A
    restarted.close()
    assert sorted(r.value for r in rest) == sorted(
        f"B:{k}:{i}".encode() for i in range(3) for k in KEYS
    )
    assert extra is None or extra.error() is not None


def _commit_each(messages: list[Message], first: Consumer, second: Consumer, a: set[int]) -> None:
    for msg in messages:
        owner = first if msg.partition() in a else second
        owner.commit(message=msg, asynchronous=False)
