"""Kafka from testcontainers, when a Docker engine answers; a named skip when none does."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from tests.docker_engine import docker_engine_available


def test_round_trip_on_containerised_kafka() -> None:
    available, why = docker_engine_available()
    if not available:
        pytest.skip(f"Kafka via testcontainers needs a Docker engine: {why}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as kafka:
        settings = KafkaSettings(bootstrap_servers=kafka.get_bootstrap_server())
        topic = f"tc-{uuid.uuid4().hex[:8]}"
        producer = Producer(producer_config(settings))
        producer.produce(topic, key=b"k", value=b"v")
        assert producer.flush(30) == 0
        consumer = Consumer(consumer_config(settings, f"g-{topic}"))
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = consumer.poll(30)
        consumer.close()
        assert msg is not None and msg.value() == b"v"
