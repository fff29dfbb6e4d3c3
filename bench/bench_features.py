"""Features processor end to end vs raw consume + decode of the same topic, one core.

Preloads 100,000 InferenceEvents (2 models, 30 features, event times over 2 days) into
the embedded broker, with a real redis-server, then, alternating, 3 times each:

- raw: ``consume(num_messages=5000)`` + the columnar batch decoder, nothing else;
- processor: the real features :class:`~stream.runtime.loop.ProcessorLoop` step
  (consume, decode, merge into hourly bucket partials of one 7-day view with 6
  aggregates of 3 fields, one WATCH/MULTI Redis transaction per batch, commit).

Twice: 5,000 distinct entities (each batch touches most of them) and 100 (hot entities,
many buckets each). The process is pinned to one CPU (librdkafka's threads and
redis-server are not). Medians.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from driftline.embedded import broker_process, redis_process
from driftline.ports import free_port
from schemas.admin import ensure_topics, make_admin
from schemas.feature_views import FeatureViews
from schemas.inference_batch import decode_inference_batch
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS
from stream.features_app import build_features_loop
from stream.settings import FeatureProcessorSettings
from tests.integration.test_drift_processor_support import CODEC, T0, produce
from tests.records_factory import FEATURE_NAMES, inference_event

EVENTS = 100_000
MODELS = ("bench-a", "bench-b")
REPEATS = 3
FIELDS = FEATURE_NAMES[:3]
VIEWS = FeatureViews.model_validate(
    {
        "views": [
            {
                "name": "bench_stats",
                "window": "7d",
                "bucket": "1h",
                "features": [
                    {"name": "n", "aggregate": "count"},
                    {"name": "mean0", "aggregate": "mean", "field": FIELDS[0]},
                    {"name": "sum1", "aggregate": "sum", "field": FIELDS[1]},
                    {"name": "min2", "aggregate": "min", "field": FIELDS[2]},
                    {"name": "max0", "aggregate": "max", "field": FIELDS[0]},
                    {"name": "last1", "aggregate": "last", "field": FIELDS[1]},
                ],
            }
        ]
    }
)


def _preload(settings: KafkaSettings, topic: str, entities: int) -> None:
    rng = np.random.default_rng(0)
    times = T0 + np.sort(rng.integers(0, 2 * 86_400_000, EVENTS))
    who = rng.integers(0, entities, EVENTS)
    records: list[tuple[str, bytes]] = []
    for i in range(EVENTS):
        model = MODELS[i % 2]
        value = inference_event(
            i, model, event_time=int(times[i]), variant="baseline", entity_id=f"e{who[i]}"
        )
        records.append((model, CODEC.encode("InferenceEvent", value, check=False)))
    produce(settings, topic, records)


def _raw(settings: KafkaSettings, topic: str, group: str) -> float:
    consumer = Consumer(consumer_config(settings, group))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(INFERENCE_EVENTS.partitions)])
    seen = 0
    start = time.perf_counter()
    while seen < EVENTS:
        msgs = [m for m in consumer.consume(num_messages=5000, timeout=1.0) if m.error() is None]
        by_partition: dict[int, list[bytes | None]] = {}
        for m in msgs:
            by_partition.setdefault(m.partition() or 0, []).append(m.value())
        for values in by_partition.values():
            decode_inference_batch(values, CODEC)
        seen += len(msgs)
    elapsed = time.perf_counter() - start
    consumer.close()
    return EVENTS / elapsed


def _processor(settings: KafkaSettings, redis_url: str, group: str) -> float:
    loop = build_features_loop(
        settings,
        FeatureProcessorSettings(group_id=group, metrics_port=0, commit_interval_s=1),
        RedisSettings(url=SecretStr(redis_url)),
        VIEWS,
    )
    loop.consumer.assign(
        [TopicPartition(loop.input_topic, p, 0) for p in range(INFERENCE_EVENTS.partitions)]
    )
    start = time.perf_counter()
    while loop.stats.messages < EVENTS:
        loop.step()
    elapsed = time.perf_counter() - start
    loop.consumer.close()
    return EVENTS / elapsed


def _run(root: Path, redis_url: str, entities: int) -> tuple[float, float, int]:
    port = free_port()
    broker = broker_process(port, root)
    broker.start()
    try:
        broker.wait_healthy(30)
        settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", topic_prefix="bench.")
        specs = [s.prefixed("bench.") for s in (INFERENCE_EVENTS, DEAD_LETTERS)]
        ensure_topics(make_admin(settings), specs)
        _preload(settings, specs[0].name, entities)
        client = redis.Redis.from_url(redis_url)
        raw, proc = [], []
        for i in range(REPEATS):
            client.flushdb()
            raw.append(_raw(settings, specs[0].name, f"raw-{i}"))
            proc.append(_processor(settings, redis_url, f"proc-{i}"))
        hashes = sum(1 for _ in client.scan_iter("driftline:features:bench_stats:*"))
        client.close()
    finally:
        broker.stop()
    return statistics.median(raw), statistics.median(proc), hashes


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis_port = free_port()
        server = redis_process(redis_port, root / "redis")
        server.start()
        try:
            server.wait_healthy(30)
            url = f"redis://127.0.0.1:{redis_port}/0"
            results = {n: _run(root, url, n) for n in (5000, 100)}
        finally:
            server.stop()
    print(f"{'entities (1 core, median of ' + str(REPEATS) + ')':<36}{'raw ev/s':>10}"
          f"{'features ev/s':>15}{'ratio':>8}{'hashes':>8}")  # fmt: skip
    for n, (raw, proc, hashes) in results.items():
        print(f"{n:<36,}{raw:>10,.0f}{proc:>15,.0f}{proc / raw:>8.2f}{hashes:>8,}")


if __name__ == "__main__":
    main()
