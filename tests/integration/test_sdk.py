"""The producer SDK against the real broker: the example runs, failures reach the caller."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Message

from schemas.codec import Decoded, SingleObjectCodec
from schemas.exceptions import DeliveryError
from schemas.sdk import DriftlineProducer
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, INFERENCE_FEEDBACK
from tests.integration.conftest import assigned_consumer, read_all

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sdk_quickstart.py"


def _decoded(
    settings: KafkaSettings, topic: str, partitions: int, n: int, group: str
) -> list[Decoded]:
    consumer = assigned_consumer(settings, topic, partitions, group)
    messages: list[Message] = read_all(consumer, n)  # type: ignore[assignment]
    consumer.close()
    codec = SingleObjectCodec()
    return [codec.decode(m.value() or b"") for m in messages]


def test_quickstart_example_runs_against_the_broker(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    unique: Callable[[str], str],
) -> None:
    events, feedback = make_topics(INFERENCE_EVENTS, INFERENCE_FEEDBACK)
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
    }
    env.pop("DRIFTLINE_SCHEMA_REGISTRY_URL", None)
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "refused before sending: InferenceEvent.features['amount']" in run.stdout
    assert "sent and acknowledged: 40 records" in run.stdout

    inference = _decoded(kafka_settings, events, INFERENCE_EVENTS.partitions, 20, unique("g"))
    labels = _decoded(kafka_settings, feedback, INFERENCE_FEEDBACK.partitions, 20, unique("g"))
    assert len(inference) == 20 and len(labels) == 20
    assert {d.value["source"] for d in inference} == {"sdk-quickstart"}
    assert {d.value["request_id"] for d in inference} == {d.value["request_id"] for d in labels}


def test_sent_events_arrive_decodable(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    unique: Callable[[str], str],
) -> None:
    (events,) = make_topics(INFERENCE_EVENTS)
    with DriftlineProducer(source="svc", settings=kafka_settings) as sdk:
        future = sdk.send_inference(
            model_name="m", model_version="2", features={"x": 1.5}, latency_ms=2.0,
            prediction="cat", request_id="r-1", trace_id="t-1",
        )  # fmt: skip
        msg = future.result(timeout=30)
    assert msg.topic() == events and msg.key() == b"m"
    (decoded,) = _decoded(kafka_settings, events, INFERENCE_EVENTS.partitions, 1, unique("g"))
    assert decoded.value["features"] == {"x": 1.5}
    assert decoded.value["prediction"] == "cat" and decoded.value["trace_id"] == "t-1"


def test_delivery_failure_reaches_the_caller() -> None:
    # Nothing listens on port 1: librdkafka gives up after message.timeout.ms.
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    sdk = DriftlineProducer(
        source="svc", settings=settings, extra_config={"message.timeout.ms": 1500}
    )
    future = sdk.send_feedback(request_id="r", model_name="m", label=1.0)
    with pytest.raises(DeliveryError, match=r"FeedbackEvent to inference\.feedback failed"):
        future.result(timeout=30)
    sdk.close(timeout_s=5)  # nothing left in flight: the failure was already reported


def test_close_raises_when_records_are_still_in_flight() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    sdk = DriftlineProducer(source="svc", settings=settings)
    sdk.send_feedback(request_id="r", model_name="m", label=1.0)
    with pytest.raises(DeliveryError, match="1 records not delivered"):
        sdk.close(timeout_s=0.5)
