"""How fast the embedded stack is ready, and what the consumer-group settings buy.

Measures, on this machine, side by side in one run:
- start-to-healthy of the embedded broker and of redis-server (median of 5 starts);
- first consumer-group join (subscribe → partitions assigned) with librdkafka's default
  session settings vs Driftline's (``session.timeout.ms=6000``,
  ``heartbeat.interval.ms=500``), 3 groups each, all joined concurrently so the run stays
  short. The ratio is what docs/decisions.md ("Embedded broker") quotes;
- the whole local stack (``LocalStack``, Alertmanager and Prometheus included when
  installed): start-to-healthy and stop, one process after another (the launcher before
  2026-11-30, kept here as ``OneByOneStack``) vs in dependency phases (today's), run
  alternately on one data dir whose champion is trained beforehand (``--stack-runs``
  each; ``--stack-runs 0`` skips this part).
"""

from __future__ import annotations

import argparse
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
from driftline.processes import ManagedProcess
from driftline.settings import StackSettings
from driftline.stack import Endpoint, LocalStack
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


class OneByOneStack(LocalStack):
    """The launcher as it was before phases: each process waited for before the next
    starts, topics before the champion, and every process stopped one after another."""

    def _launch(
        self, proc: ManagedProcess, endpoint: Endpoint, timeout_s: float | None = None
    ) -> None:
        super()._launch(proc, endpoint, timeout_s)
        self._await_launched()

    def _prepare(self) -> None:
        self._ensure_topics()
        self._ensure_champion()

    def stop(self) -> None:
        while self._processes:
            self._processes.pop().stop()


def _stack_s(kind: type[LocalStack], data_dir: Path) -> tuple[float, float]:
    """Seconds to start the whole stack healthy, and to stop it."""
    stack = kind(stack=StackSettings(data_dir=data_dir))
    started = time.perf_counter()
    stack.start()
    up = time.perf_counter() - started
    started = time.perf_counter()
    stack.stop()
    return up, time.perf_counter() - started


def _whole_stack(runs: int) -> list[tuple[str, list[float]]]:
    """Alternate one-by-one and phased runs so both see the same machine load."""
    from retrain.training import ensure_champion
    from schemas.model_registry import ModelStore
    from schemas.settings import DataSettings

    data_dir = Path(tempfile.mkdtemp(prefix="bench-whole-stack-"))
    ensure_champion(ModelStore.from_settings(DataSettings(data_dir=data_dir)))
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        for label, kind in (("one by one", OneByOneStack), ("phased", LocalStack)):
            up, down = _stack_s(kind, data_dir)
            times.setdefault(f"whole stack start, {label}", []).append(up)
            times.setdefault(f"whole stack stop, {label}", []).append(down)
    return sorted(times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack-runs", type=int, default=3, help="whole-stack runs of each kind")
    args = parser.parse_args()
    whole = _whole_stack(args.stack_runs) if args.stack_runs > 0 else []
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
        *whole,
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
    medians = {name: statistics.median(values) for name, values in whole}
    for part in ("start", "stop"):
        one_by_one = medians.get(f"whole stack {part}, one by one")
        phased = medians.get(f"whole stack {part}, phased")
        if one_by_one and phased:
            console.print(
                f"whole stack {part}: one by one takes {one_by_one / phased:.1f}x as long"
            )


if __name__ == "__main__":
    main()
