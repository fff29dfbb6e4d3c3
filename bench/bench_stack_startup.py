"""How fast the embedded stack is ready, and what the consumer-group settings buy.

Measures, on this machine, side by side in one run:
- start-to-healthy of the embedded broker and of redis-server (median of 5 starts);
- first consumer-group join (subscribe → partitions assigned) with librdkafka's default
  session settings vs Driftline's (``session.timeout.ms=6000``,
  ``heartbeat.interval.ms=500``), 3 groups each, all joined concurrently so the run stays
  short. The ratio is what docs/decisions.md ("Embedded broker") quotes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import Consumer
from rich.console import Console
from rich.table import Table

from driftline.embedded import broker_process, redis_process
from driftline.ports import LOOPBACK, free_port
from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS

STARTS = 5
JOINS = 3


def _startup_s(kind: str, logs: Path) -> list[float]:
    times = []
    for _ in range(STARTS):
        port = free_port()
        proc = broker_process(port, logs) if kind == "broker" else redis_process(port, logs)
        started = time.perf_counter()
        proc.start()
        proc.wait_healthy(30)
        times.append(time.perf_counter() - started)
        proc.stop()
    return times


def _join_s(bootstrap: str, topic: str, tuned: bool) -> float:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    conf = consumer_config(settings, f"bench-{uuid.uuid4().hex[:8]}")
    if not tuned:  # librdkafka's own defaults
        conf.pop("session.timeout.ms")
        conf.pop("heartbeat.interval.ms")
    consumer = Consumer(conf)
    started = time.perf_counter()
    consumer.subscribe([topic])
    while not consumer.assignment() and time.perf_counter() - started < 120:
        consumer.poll(0.05)
    took = time.perf_counter() - started
    consumer.close()
    return took


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    broker = _startup_s("broker", logs)
    redis = _startup_s("redis", logs)

    port = free_port()
    proc = broker_process(port, logs)
    proc.start()
    proc.wait_healthy(30)
    bootstrap = f"{LOOPBACK}:{port}"
    try:
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        ensure_topics(make_admin(settings), [INFERENCE_EVENTS])
        with ThreadPoolExecutor(max_workers=2 * JOINS) as pool:
            tuned_f = [
                pool.submit(_join_s, bootstrap, INFERENCE_EVENTS.name, True) for _ in range(JOINS)
            ]
            default_f = [
                pool.submit(_join_s, bootstrap, INFERENCE_EVENTS.name, False) for _ in range(JOINS)
            ]
            tuned = [f.result() for f in tuned_f]
            default = [f.result() for f in default_f]
    finally:
        proc.stop()

    table = Table(title="Embedded stack start-up and group join (seconds, median)")
    for column in ("measure", "runs", "median", "min", "max"):
        table.add_column(column)
    rows = [
        ("broker start → healthy", broker),
        ("redis-server start → healthy", redis),
        ("group join, librdkafka defaults", default),
        ("group join, Driftline settings", tuned),
    ]
    for name, values in rows:
        table.add_row(
            name,
            str(len(values)),
            f"{statistics.median(values):.3f}",
            f"{min(values):.3f}",
            f"{max(values):.3f}",
        )
    console = Console()
    console.print(table)
    ratio = statistics.median(default) / statistics.median(tuned)
    console.print(f"group join: defaults take {ratio:.1f}x as long as Driftline's settings")


if __name__ == "__main__":
    main()
