"""The alert evaluator across restarts, and with a bad record, on the embedded broker.

A restart rebuilds pending breaches by replaying the input before the committed offset
(with outputs suppressed): a breach that began before the restart fires on time after
it, and one that fired before is not emitted again. A record that is not a DriftScore
goes to the dead-letter topic and processing goes on. No Alertmanager: the outputs
checked here are the topics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from schemas.catalog import DRIFT_SCORE
from schemas.codec import make_codec
from schemas.dead_letters import REASON
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import ALERTS, DEAD_LETTERS, DRIFT_SCORES, RETRAIN_REQUESTS, SLO_WINDOWS
from stream.alerting.app import build_alert_loop
from stream.alerting.loop import AlertLoop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_alerting_flow import MIN, drift_score, now_minus

CODEC = make_codec()


def run_until(loop: AlertLoop, done: Callable[[AlertLoop], bool], timeout_s: float = 60) -> None:
    """Run ``loop`` in a thread until ``done(loop)``, then stop it (commit, close)."""
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not done(loop) and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.stop()
    thread.join(30)
    assert done(loop), loop.stats


def produce(kafka: KafkaSettings, records: list[dict[str, Any]]) -> None:
    producer = Producer(producer_config(kafka))
    topic = f"{kafka.topic_prefix}{DRIFT_SCORES.name}"
    for record in records:
        producer.produce(topic, key=b"fraud", value=CODEC.encode(DRIFT_SCORE, record))
    assert producer.flush(30) == 0


def read(kafka: KafkaSettings, spec: Any, expected: int, group: str) -> list[Any]:
    consumer = assigned_consumer(kafka, f"{kafka.topic_prefix}{spec.name}", spec.partitions, group)
    try:
        return read_all(consumer, expected, timeout_s=15)
    finally:
        consumer.close()


def test_restart_keeps_a_pending_breach_and_never_repeats_an_output(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]],
    unique: Callable[[str], str],
) -> None:  # fmt: skip
    make_topics(DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS, DEAD_LETTERS)
    settings = AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2)

    def loop() -> AlertLoop:
        return build_alert_loop(kafka_settings, settings, AlertmanagerSettings(url=None))

    t0 = now_minus(40)
    produce(kafka_settings, [drift_score("fraud", i, 0.9, t0) for i in range(10)])
    first = loop()
    run_until(first, lambda lp: lp.stats.records >= 10)
    assert first.stats.alerts == 0  # 10 minutes of breach: pending

    # 6 more minutes: fires only if the restart remembered the first 10
    produce(kafka_settings, [drift_score("fraud", i, 0.9, t0) for i in range(10, 16)])
    second = loop()
    run_until(second, lambda lp: lp.stats.records >= 6)
    assert second.stats.replayed == 10
    assert (second.stats.alerts, second.stats.retrain_requests) == (1, 1)

    # a third start replays all 16 windows and emits nothing
    third = loop()
    run_until(third, lambda lp: lp.stats.replayed >= 16)
    assert (third.stats.records, third.stats.alerts, third.stats.retrain_requests) == (0, 0, 0)

    alerts = read(kafka_settings, ALERTS, 2, unique("read"))
    requests = read(kafka_settings, RETRAIN_REQUESTS, 2, unique("read"))
    assert len(alerts) == 1 and len(requests) == 1
    request = CODEC.decode(requests[0].value()).value
    assert request["evidence"]["window_start"] == t0
    assert request["evidence"]["window_end"] == t0 + 15 * MIN


def test_a_bad_record_is_dead_lettered_and_evaluation_goes_on(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]],
    unique: Callable[[str], str],
) -> None:  # fmt: skip
    make_topics(DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS, DEAD_LETTERS)
    producer = Producer(producer_config(kafka_settings))
    producer.produce(f"{kafka_settings.topic_prefix}{DRIFT_SCORES.name}", key=b"fraud",
                     value=b"not avro at all")  # fmt: skip
    assert producer.flush(30) == 0
    t0 = now_minus(30)
    produce(kafka_settings, [drift_score("fraud", i, 0.95, t0) for i in range(16)])
    loop = build_alert_loop(
        kafka_settings,
        AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2),
        AlertmanagerSettings(url=None),
    )
    run_until(loop, lambda lp: lp.stats.records >= 16)
    assert (loop.stats.dead_letters, loop.stats.alerts) == (1, 1)
    [dead] = read(kafka_settings, DEAD_LETTERS, 1, unique("read"))
    assert dead.value() == b"not avro at all"
    assert dict(dead.headers() or [])[REASON] == b"bad_magic"
