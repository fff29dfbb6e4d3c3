"""How long one retrain takes: request to canary, and where the time goes.

On the embedded broker, a real redis-server and a sqlite MLflow store, with the baseline
champion trained first and 500 labelled predictions (InferenceEvents + FeedbackEvents) on
the topics. Side by side in one run:

- the handler in-process (lock, de-dup, cooldown, training set, fit, scoring of candidate
  and champion, MLflow run and registration, gate, rollout state, DeploymentEvent), with
  the recent-traffic window on (reads both topics) and off (reference data only);
- the worker: RetrainRequest produced to ``retrain.requests`` until the canary is in
  Redis (the consumer group already joined).

Each is the median of RUNS urgent requests (urgent: the cooldown would suppress repeats).
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
from confluent_kafka import Producer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from driftline.embedded import broker_process, redis_process
from driftline.ports import LOOPBACK, free_port
from retrain.job import RetrainOutcome
from retrain.settings import RetrainSettings
from retrain.training import train_and_register
from retrain.worker import RetrainWorker, make_handler
from schemas.admin import ensure_topics, make_admin
from schemas.breast_cancer import DEFAULT_MODEL_NAME
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.retrain_requests import retrain_request
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import all_topics
from tests.integration.retrain_helpers import send_labelled_traffic

RUNS = 5
TRAFFIC_ROWS = 500


def _marker(marks: list[tuple[str, float]]) -> Callable[[str], None]:
    """A progress callback that timestamps each step by its message's first word."""

    def mark(step: str) -> None:
        marks.append((step.split(" ")[0], time.perf_counter()))

    return mark


def _handler_runs(
    settings: RetrainSettings,
    kafka: KafkaSettings,
    redis_settings: RedisSettings,
    store: ModelStore,
) -> tuple[list[float], dict[str, list[float]]]:
    handler = make_handler(settings, kafka, redis_settings, store)
    totals: list[float] = []
    steps: dict[str, list[float]] = {}
    for _ in range(RUNS):
        marks: list[tuple[str, float]] = []
        mark = _marker(marks)
        started = time.perf_counter()
        outcome = handler.handle(
            retrain_request(DEFAULT_MODEL_NAME, "manual", "bench", urgent=True),
            progress=mark,
        )
        ended = time.perf_counter()
        if outcome.status != "challenger":
            raise RuntimeError(f"retrain did not pass: {outcome.detail}")
        totals.append(ended - started)
        points = [("start", started), *marks, ("end", ended)]
        for (name, at), (_, until) in itertools.pairwise(points[1:]):
            steps.setdefault(name, []).append(until - at)
    return totals, steps


def _worker_runs(
    settings: RetrainSettings,
    kafka: KafkaSettings,
    redis_settings: RedisSettings,
    store: ModelStore,
) -> list[float]:
    done = threading.Event()
    outcomes: list[RetrainOutcome] = []

    def seen(outcome: RetrainOutcome) -> None:
        outcomes.append(outcome)
        done.set()

    handler = make_handler(settings, kafka, redis_settings, store)
    worker = RetrainWorker(settings, kafka, handler, on_outcome=seen)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    producer = Producer(producer_config(kafka))
    topic = f"{kafka.topic_prefix}retrain.requests"
    codec = SingleObjectCodec()
    times: list[float] = []
    try:
        for i in range(RUNS + 1):  # the first one includes the group join: not counted
            done.clear()
            request = retrain_request(DEFAULT_MODEL_NAME, "manual", "bench", urgent=True)
            started = time.perf_counter()
            producer.produce(topic, codec.encode(RETRAIN_REQUEST, request), key=b"m")
            producer.flush(10)
            if not done.wait(180):
                raise RuntimeError("the worker did not answer within 180 s")
            if i > 0:
                times.append(time.perf_counter() - started)
    finally:
        worker.stop()
        thread.join(30)
    if any(o.status != "challenger" for o in outcomes):
        raise RuntimeError(f"not every retrain passed: {outcomes}")
    return times


def main() -> None:
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker_port, redis_port = free_port(), free_port()
        broker = broker_process(broker_port, root)
        server = redis_process(redis_port, root)
        broker.start()
        server.start()
        try:
            broker.wait_healthy(30)
            server.wait_healthy(30)
            kafka = KafkaSettings(bootstrap_servers=f"{LOOPBACK}:{broker_port}", topic_prefix="b.")
            ensure_topics(make_admin(kafka), list(all_topics(kafka.topic_prefix)))
            redis_settings = RedisSettings(url=SecretStr(f"redis://{LOOPBACK}:{redis_port}/0"))
            store = ModelStore.embedded(root / "data")
            train_and_register(store)
            send_labelled_traffic(kafka, DEFAULT_MODEL_NAME, TRAFFIC_ROWS)
            settings = RetrainSettings(read_idle_s=1.0, poll_timeout_s=0.2)
            quiet = settings.model_copy(update={"window_s": 0.0})
            with_traffic, steps = _handler_runs(settings, kafka, redis_settings, store)
            reference_only, _ = _handler_runs(quiet, kafka, redis_settings, store)
            redis.Redis.from_url(redis_settings.url.get_secret_value()).flushdb()
            via_worker = _worker_runs(settings, kafka, redis_settings, store)
        finally:
            server.stop()
            broker.stop()
    table = Table(
        title=f"one retrain, median of {RUNS} (breast cancer, {TRAFFIC_ROWS} labelled rows)"
    )
    for column in ("path", "median (s)", "min (s)", "max (s)", "vs reference only"):
        table.add_column(column)
    base = statistics.median(reference_only)
    for name, values in (
        ("handler, reference data only (window 0)", reference_only),
        (f"handler, reference + {TRAFFIC_ROWS} recent rows", with_traffic),
        ("worker: request produced -> canary in Redis", via_worker),
    ):
        median = statistics.median(values)
        table.add_row(
            name,
            f"{median:.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
            f"{median / base:.2f}x",
        )
    console.print(table)
    detail = Table(title="where the handler's time goes (window on), median per step")
    detail.add_column("step (first word of its progress message)")
    detail.add_column("median (s)")
    for name, values in steps.items():
        detail.add_row(name, f"{statistics.median(values):.3f}")
    console.print(detail)
