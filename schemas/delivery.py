"""Produce one record and wait for the broker's acknowledgement.

For the few records whose sender must know they were recorded before it answers
(DeploymentEvents, RetrainRequests from the API or the CLI); the high-volume paths
(serving's InferenceEvents) publish asynchronously instead.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException, Producer

from schemas.codec import Codec, make_codec
from schemas.exceptions import DeliveryError
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import TopicSpec


def produce_and_wait(
    kafka: KafkaSettings,
    spec: TopicSpec,
    record_type: str,
    value: dict[str, Any],
    key: str,
    codec: Codec | None = None,
    timeout_s: float = 15.0,
) -> None:
    """Encode ``value`` as ``record_type``, produce it to ``spec`` (prefixed), wait for the ack.

    :raises RecordValidationError: ``value`` breaks the schema (nothing was sent).
    :raises DeliveryError: Kafka did not acknowledge it within ``timeout_s``.
    """
    data = (codec or make_codec()).encode(record_type, value)
    topic = spec.prefixed(kafka.topic_prefix).name
    failures: list[str] = []
    producer = Producer(producer_config(kafka, **{"message.timeout.ms": int(timeout_s * 1000)}))

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    try:
        producer.produce(topic, value=data, key=key.encode(), on_delivery=delivered)
    except (KafkaException, BufferError) as exc:
        raise DeliveryError(f"{record_type} to {topic} not sent: {exc}") from None
    left = producer.flush(timeout_s)
    if left or failures:
        raise DeliveryError(f"{record_type} to {topic} not acknowledged: {failures or 'timed out'}")
