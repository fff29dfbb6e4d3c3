"""``driftline topic tail`` prints decoded records (and bad ones) from the real broker."""

from __future__ import annotations

import socket
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from driftline.cli import app
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from tests.records_factory import inference_event


@pytest.fixture
def filled_topic(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    (events,) = make_topics(INFERENCE_EVENTS)
    codec = SingleObjectCodec()
    producer = Producer(producer_config(kafka_settings))
    for i in range(3):
        producer.produce(
            events, codec.encode("InferenceEvent", inference_event(i)), key=b"m", partition=2
        )
    producer.produce(events, b"not avro", key=b"m", partition=2, headers=[("h", b"v")])
    assert producer.flush(30) == 0
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("DRIFTLINE_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.delenv("DRIFTLINE_SCHEMA_REGISTRY_URL", raising=False)
    return events


def test_tail_json_prints_envelopes_including_bad_records(filled_topic: str) -> None:
    result = CliRunner().invoke(
        app, ["topic", "tail", "inference.events", "--from-beginning", "--json", "-n", "4",
              "--timeout", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert [line["offset"] for line in lines] == [0, 1, 2, 3]
    assert all(line["topic"] == filled_topic and line["partition"] == 2 for line in lines)
    assert [line["value"] for line in lines[:3]] == [inference_event(i) for i in range(3)]
    assert lines[0]["record_type"] == "InferenceEvent"
    assert lines[3]["error"]["reason"] == "bad_magic"
    assert bytes.fromhex(lines[3]["value_hex"]) == b"not avro"
    assert lines[3]["headers"] == {"h": "v"}


def test_tail_plain_prints_records_of_one_partition(filled_topic: str) -> None:
    result = CliRunner().invoke(
        app, ["topic", "tail", "inference.events", "--from-beginning", "--partition", "2",
              "-n", "2", "--timeout", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [orjson.loads(x) for x in result.stdout.splitlines()] == [
        inference_event(0),
        inference_event(1),
    ]


def test_tail_of_an_empty_partition_ends_on_timeout(filled_topic: str) -> None:
    result = CliRunner().invoke(
        app, ["topic", "tail", "inference.events", "--from-beginning", "-p", "0", "--timeout", "1"]
    )
    assert result.exit_code == 0
    assert result.stdout == ""


def test_tail_of_a_missing_topic_fails_clearly(filled_topic: str) -> None:
    result = CliRunner().invoke(app, ["topic", "tail", "no.such.topic", "--timeout", "1"])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_tail_with_the_broker_down_says_so_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("DRIFTLINE_KAFKA_TOPIC_PREFIX", "")
    result = CliRunner().invoke(app, ["topic", "tail", "alerts", "--timeout", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"cannot read alerts at {address}" in result.stderr
    assert "Traceback" not in result.output
