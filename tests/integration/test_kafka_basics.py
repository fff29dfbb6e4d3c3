"""The basics every component relies on, proved on the real broker.

Explicit topics, keyed records, a consumer group whose two members split the
partitions, manual commits, and a restarted consumer resuming from its commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from confluent_kafka import Consumer, Producer

from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from tests.integration.kafka_helpers import Record, poll_until, wait_for_assignment


def test_group_splits_partitions_commits_and_resumes(
    kafka_settings: KafkaSettings, unique: Callable[[str], str]
) -> None:
    spec = INFERENCE_EVENTS.prefixed(kafka_settings.topic_prefix)
    ensure_topics(make_admin(kafka_settings), [spec])

    producer = Producer(producer_config(kafka_settings))
    keys = [f"model-{i}" for i in range(12)]
    for round_ in range(5):
        for key in keys:
            producer.produce(spec.name, key=key, value=f"{key}:{round_}".encode())
    assert producer.flush(30) == 0
    total = len(keys) * 5

    group = unique("group")
    first = Consumer(consumer_config(kafka_settings, group))
    second = Consumer(consumer_config(kafka_settings, group))
    for consumer in (first, second):
        consumer.subscribe([spec.name])
    early = wait_for_assignment([first, second])

    a = {tp.partition for tp in first.assignment()}
    b = {tp.partition for tp in second.assignment()}
    assert a and b, "both members own partitions"
    assert not a & b, "no partition is owned twice"
    assert a | b == set(range(spec.partitions))

    # Consume about half, commit exactly what was processed, then stop both members.
    half = total // 2
    messages = early + poll_until([first, second], lambda got: len(early) + len(got) >= half)
    seen = [Record.of(m) for m in messages]
    by_partition: dict[int, list[int]] = defaultdict(list)
    values_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for rec in seen:
        by_partition[rec.partition].append(rec.offset)
        values_by_key[rec.key].append(rec.value)
    for msg, rec in zip(messages, seen, strict=True):
        owner = first if rec.partition in a else second
        owner.commit(message=msg, asynchronous=False)
    first.close()
    second.close()

    # Keyed records keep their order within a key.
    for record_key, values in values_by_key.items():
        rounds = [int(v.split(b":")[1]) for v in values]
        assert rounds == sorted(rounds), record_key.decode()

    # A restarted consumer in the same group resumes right after the commits.
    restarted = Consumer(consumer_config(kafka_settings, group))
    restarted.subscribe([spec.name])
    rest = [
        Record.of(m) for m in poll_until([restarted], lambda got: len(seen) + len(got) >= total)
    ]
    restarted.close()
    assert len(seen) + len(rest) == total, "nothing lost, nothing consumed twice"
    for rec in rest:
        done = by_partition.get(rec.partition, [])
        assert not done or rec.offset > max(done), "resumed from the committed offset"
    assert {r.value for r in seen}.isdisjoint({r.value for r in rest})
