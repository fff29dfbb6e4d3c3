"""The alert evaluator on the embedded broker against a real Alertmanager.

A breach sequence of DriftScores (and of SloWindows for latency) goes to its topic;
the evaluator must post the alert (visible in ``GET /api/v2/alerts`` with the right
labels), write the Alert record, emit one RetrainRequest per breach, and resolve the
alert when the value clears. Alertmanager stopped during a breach and started again
must still receive it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.catalog import DRIFT_SCORE, SLO_WINDOW
from schemas.codec import make_codec
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import ALERTS, DEAD_LETTERS, DRIFT_SCORES, RETRAIN_REQUESTS, SLO_WINDOWS
from stream.alerting.app import build_alert_loop
from stream.alerting.loop import AlertLoop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from tests.integration.alerting_helpers import AlertmanagerServer
from tests.integration.conftest import assigned_consumer, read_all

MIN = 60_000
CODEC = make_codec()


def drift_score(model: str, i: int, score: float, t0: int) -> dict[str, Any]:
    return {
        "model_name": model, "model_version": "1", "window_start": t0 + i * MIN,
        "window_end": t0 + (i + 1) * MIN, "event_count": 600, "drift_score": score,
        "drifted": score > 0, "reference_id": "ref", "method": "wasserstein",
        "features": [{"feature": "age", "statistic": 0.5, "p_value": 0.001,
                      "threshold": 0.1, "drifted": True, "sample_size": 600}],
    }  # fmt: skip


def slo_window(model: str, i: int, p95_ms: float, t0: int) -> dict[str, Any]:
    return {
        "model_name": model, "model_version": "1", "variant": "baseline",
        "window_start": t0 + i * MIN, "window_end": t0 + (i + 1) * MIN,
        "request_count": 1000, "client_error_count": 0, "server_error_count": 0,
        "error_rate": 0.0, "latency_p50_ms": p95_ms / 3, "latency_p95_ms": p95_ms,
        "latency_p99_ms": p95_ms * 1.5,
    }  # fmt: skip


class Running:
    """The evaluator in a thread, and a producer for its input topics."""

    def __init__(self, kafka: KafkaSettings, loop: AlertLoop) -> None:
        self.kafka = kafka
        self.loop = loop
        self.producer = Producer(producer_config(kafka))
        self.thread = threading.Thread(target=loop.run, daemon=True)
        self.thread.start()

    def send(self, topic: str, record_type: str, records: list[dict[str, Any]]) -> None:
        name = f"{self.kafka.topic_prefix}{topic}"
        for record in records:
            self.producer.produce(
                name, key=record["model_name"].encode(), value=CODEC.encode(record_type, record)
            )
        assert self.producer.flush(30) == 0


@pytest.fixture
def evaluator(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    alertmanager: AlertmanagerServer,
    unique: Callable[[str], str],
) -> Iterator[Running]:
    make_topics(DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS, DEAD_LETTERS)
    loop = build_alert_loop(
        kafka_settings,
        AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2),
        AlertmanagerSettings(url=alertmanager.url, resend_interval_s=2.0, backoff_max_s=1.0),
    )
    running = Running(kafka_settings, loop)
    try:
        yield running
    finally:
        loop.stop()
        running.thread.join(30)


def now_minus(minutes: int) -> int:
    return (round(time.time() * 1000) // MIN - minutes) * MIN


def records_on(
    kafka: KafkaSettings, spec: Any, expected: int, unique: Callable[[str], str]
) -> list[dict[str, Any]]:
    consumer = assigned_consumer(
        kafka, f"{kafka.topic_prefix}{spec.name}", spec.partitions, unique("read")
    )
    try:
        got = read_all(consumer, expected, timeout_s=30)
    finally:
        consumer.close()
    return [CODEC.decode(m.value()).value for m in got]  # type: ignore[attr-defined]


def test_drift_breach_fires_resolves_and_asks_for_one_retrain(
    evaluator: Running, alertmanager: AlertmanagerServer, kafka_settings: KafkaSettings,
    unique: Callable[[str], str],
) -> None:  # fmt: skip
    t0 = now_minus(40)
    evaluator.send(DRIFT_SCORES.name, DRIFT_SCORE,
                   [drift_score("fraud", i, 0.95, t0) for i in range(14)])  # fmt: skip
    evaluator.send(DRIFT_SCORES.name, DRIFT_SCORE,
                   [drift_score("fraud", i, 0.9, t0) for i in range(14, 18)])  # fmt: skip
    [alert] = alertmanager.wait_for(True, alertname="HighDriftScore", model="fraud")
    assert alert["labels"] == {
        "alertname": "HighDriftScore", "severity": "critical", "evaluator": "stream",
        "model": "fraud", "variant": "all", "version": "1",
    }  # fmt: skip
    assert alert["annotations"]["runbook_url"].endswith("docs/runbook.md#highdriftscore")
    assert "drift_score 0.9" in alert["annotations"]["description"]
    assert alert["status"]["state"] == "active"

    # hovering between the clear threshold (0.6) and 0.8: still one firing alert
    hovering = [drift_score("fraud", i, s, t0) for i, s in [(18, 0.79), (19, 0.81)]]
    evaluator.send(DRIFT_SCORES.name, DRIFT_SCORE, hovering)
    evaluator.send(DRIFT_SCORES.name, DRIFT_SCORE, [drift_score("fraud", 20, 0.2, t0)])
    assert alertmanager.wait_for(False, alertname="HighDriftScore", model="fraud") == []

    alerts = records_on(kafka_settings, ALERTS, 2, unique)
    assert [(a["alert_name"], a["state"]) for a in alerts] == [
        ("HighDriftScore", "firing"), ("HighDriftScore", "resolved"),
    ]  # fmt: skip
    assert alerts[0]["fingerprint"] == alerts[1]["fingerprint"]
    assert alerts[1]["ends_at"] == t0 + 21 * MIN
    requests = records_on(kafka_settings, RETRAIN_REQUESTS, 2, unique)  # 2: would show a dupe
    assert len(requests) == 1
    [request] = requests
    assert (request["model_name"], request["trigger"], request["model_version"]) == (
        "fraud", "drift", "1",
    )  # fmt: skip
    assert request["idempotency_key"].startswith("HighDriftScore:fraud:")
    assert request["idempotency_key"].endswith(f":{t0}")
    assert request["evidence"]["scores"]["drift_score"] == 0.9


def test_latency_breach_reaches_alertmanager_and_resolves(
    evaluator: Running, alertmanager: AlertmanagerServer
) -> None:
    t0 = now_minus(20)
    evaluator.send(SLO_WINDOWS.name, SLO_WINDOW,
                   [slo_window("fraud", i, 1500.0, t0) for i in range(6)])  # fmt: skip
    [alert] = alertmanager.wait_for(True, alertname="ServingLatencyHigh", model="fraud")
    assert (alert["labels"]["severity"], alert["labels"]["variant"]) == ("high", "baseline")
    evaluator.send(SLO_WINDOWS.name, SLO_WINDOW, [slo_window("fraud", 6, 100.0, t0)])
    assert alertmanager.wait_for(False, alertname="ServingLatencyHigh", model="fraud") == []


def test_alert_raised_while_alertmanager_is_down_arrives_when_it_is_back(
    evaluator: Running, alertmanager: AlertmanagerServer, kafka_settings: KafkaSettings,
    unique: Callable[[str], str],
) -> None:  # fmt: skip
    alertmanager.stop()
    t0 = now_minus(30)
    evaluator.send(DRIFT_SCORES.name, DRIFT_SCORE,
                   [drift_score("churn", i, 0.95, t0) for i in range(16)])  # fmt: skip
    # processing went on while Alertmanager was away: the Alert record is on its topic
    [record] = records_on(kafka_settings, ALERTS, 1, unique)
    assert (record["alert_name"], record["state"]) == ("HighDriftScore", "firing")
    sender = evaluator.loop.sender
    assert sender is not None
    deadline = time.monotonic() + 30
    while sender.backoff.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sender.backoff.failures >= 2  # it really tried and failed
    alertmanager.start()
    [alert] = alertmanager.wait_for(True, alertname="HighDriftScore", model="churn")
    assert alert["labels"]["severity"] == "critical"
