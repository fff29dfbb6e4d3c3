"""Support (no tests) for the drift-processor integration tests and benchmark."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from sklearn.datasets import load_breast_cancer

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from stream.drift_app import build_drift_loop
from stream.runtime.loop import DriftLoop
from stream.settings import DriftProcessorSettings, DriftStatsSettings
from stream.stats import ReferenceProfile

MODEL = "breast-cancer-classifier"
WINDOW_MS = 60_000
T0 = 1_700_000_040_000  # a window boundary
CODEC = SingleObjectCodec()


def breast_cancer() -> tuple[np.ndarray, list[str]]:
    data = load_breast_cancer()
    return np.asarray(data.data, dtype=float), [str(n) for n in data.feature_names]


def write_profiles(root: Path, models: list[str]) -> Path:
    """A directory profile source with one breast-cancer profile per model."""
    x, names = breast_cancer()
    profile = ReferenceProfile.build(x, names)
    root.mkdir(parents=True, exist_ok=True)
    for model in models:
        profile.save(root / f"{model}.json")
    return root


def event(model: str, t_ms: int, row: np.ndarray, names: list[str], i: int) -> bytes:
    return CODEC.encode(
        INFERENCE_EVENT,
        {
            "event_id": f"{model}-{i}", "request_id": f"r-{model}-{i}", "event_time": t_ms,
            "model_name": model, "model_version": "1", "variant": "baseline",
            "features": dict(zip(names, row.tolist(), strict=True)),
            "categorical_features": {}, "prediction": None, "probabilities": {},
            "latency_ms": 1.0, "outcome": "ok", "error_type": None, "entity_id": None,
            "trace_id": None, "source": "test",
        },
        check=False,
    )  # fmt: skip


def window_events(
    model: str, window: int, n: int, rng: np.random.Generator, shift: float = 0.0
) -> list[bytes]:
    """``n`` events in window ``window`` (ordered times); ``shift`` moves 5 features by
    that many standard deviations."""
    x, names = breast_cancer()
    rows = x[rng.integers(0, len(x), n)].copy()
    if shift:
        rows[:, :5] += shift * x[:, :5].std(axis=0)
    start = T0 + window * WINDOW_MS
    times = start + np.sort(rng.integers(0, WINDOW_MS, n))
    return [
        event(model, int(t), r, names, window * 100_000 + i)
        for i, (t, r) in enumerate(zip(times, rows, strict=True))
    ]


def produce(settings: KafkaSettings, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key.encode())
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0


def read_scores(
    settings: KafkaSettings,
    topic: str,
    want: int,
    timeout_s: float = 45.0,
    done: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> list[dict[str, Any]]:
    """DriftScores on ``topic`` until ``want`` arrived, or until ``done(got)`` when given
    (a count is wrong where repeats are allowed: they would stop the read early); the
    timeout bounds a broken run."""
    finished = done or (lambda got: len(got) >= want)
    consumer = Consumer(consumer_config(settings, f"reader-{time.monotonic_ns()}"))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not finished(got) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() is None:
                    got.append(CODEC.decode(msg.value() or b"").value)
    finally:
        consumer.close()
    return got


def loop_for(
    settings: KafkaSettings, profiles: Path, group: str, state: Path, **overrides: Any
) -> DriftLoop:
    """A loop on the test broker; ``overrides``: other DriftProcessorSettings fields."""
    return build_drift_loop(
        settings,
        DriftProcessorSettings(
            group_id=group,
            state_dir=state,
            poll_timeout_s=0.2,
            metrics_port=0,
            commit_interval_s=0,
            **overrides,
        ),
        DriftStatsSettings(reference_path=profiles),
    )


@contextmanager
def running(loops: list[DriftLoop]) -> Iterator[list[DriftLoop]]:
    """Run loops in threads; stop and join them one at a time (embedded-broker quirk)."""
    threads = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield loops
    finally:
        for loop, thread in zip(loops, threads, strict=True):
            loop.stop()
            thread.join(30)


def natural(score: dict[str, Any]) -> tuple[str, str, str, int]:
    """(model, version, window kind, window start): a DriftScore's natural key."""
    kind = score.get("window_kind", "tumbling")
    return (score["model_name"], score["model_version"], kind, score["window_start"])


def of_kind(scores: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The ``kind`` ("tumbling", "sliding") records, sorted by natural key."""
    return sorted((s for s in scores if s["window_kind"] == kind), key=natural)
