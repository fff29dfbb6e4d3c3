"""Drift processor end to end vs raw consume + decode of the same topic, one core.

Preloads 200,000 InferenceEvents (2 models, 30 breast-cancer features, 1-minute windows
of ~10,000 events) into the embedded broker, then, alternating, 3 times each:

- raw: ``consume(num_messages=5000)`` + the columnar batch decoder, nothing else;
- processor: the real :class:`~stream.runtime.loop.DriftLoop` step (consume, decode,
  windows, sketch update, close, score, produce DriftScores, flush, commit), with the
  default sliding windows (15 min every minute: a second DriftScore per close, merged
  from the kept tumbling sketches) and without them (``sliding_s=0``).

The process is pinned to one CPU (librdkafka's threads too). Medians of events/s.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from driftline.embedded import broker_process
from driftline.ports import free_port
from schemas.admin import ensure_topics, make_admin
from schemas.inference_batch import decode_inference_batch
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS
from tests.integration.test_drift_processor_support import (
    CODEC,
    loop_for,
    produce,
    window_events,
    write_profiles,
)

EVENTS = 200_000
MODELS = ("bench-a", "bench-b")
PER_WINDOW = 10_000
REPEATS = 3


def _preload(settings: KafkaSettings, topic: str) -> None:
    rng = np.random.default_rng(0)
    per_model_windows = EVENTS // len(MODELS) // PER_WINDOW
    records: list[tuple[str, bytes]] = []
    for w in range(per_model_windows):
        for m in MODELS:
            records += [(m, v) for v in window_events(m, w, PER_WINDOW, rng, 1.0 if w > 5 else 0)]
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


def _processor(
    settings: KafkaSettings, profiles: Path, state: Path, group: str, sliding_s: float = 900.0
) -> tuple[float, int]:
    loop = loop_for(settings, profiles, group, state, sliding_s=sliding_s)
    loop.commit_interval_s = 1.0
    loop.consumer.assign(
        [TopicPartition(loop.input_topic, p, 0) for p in range(INFERENCE_EVENTS.partitions)]
    )
    start = time.perf_counter()
    while loop.stats.messages < EVENTS:
        loop.step()
    elapsed = time.perf_counter() - start
    outputs = loop.stats.outputs
    loop.consumer.close()
    return EVENTS / elapsed, outputs


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        broker = broker_process(port, root)
        broker.start()
        try:
            broker.wait_healthy(30)
            settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", topic_prefix="bench.")
            specs = [s.prefixed("bench.") for s in (INFERENCE_EVENTS, DRIFT_SCORES, DEAD_LETTERS)]
            ensure_topics(make_admin(settings), specs)
            t = time.perf_counter()
            _preload(settings, specs[0].name)
            print(f"preloaded {EVENTS:,} events in {time.perf_counter() - t:.1f} s")
            profiles = write_profiles(root / "profiles", list(MODELS))
            raw, proc, tumbling, outs, outs_t = [], [], [], 0, 0
            for i in range(REPEATS):
                raw.append(_raw(settings, specs[0].name, f"raw-{i}"))
                rate, outs = _processor(settings, profiles, root / f"state-{i}", f"proc-{i}")
                proc.append(rate)
                rate, outs_t = _processor(
                    settings, profiles, root / f"state-t{i}", f"tumbling-{i}", sliding_s=0
                )
                tumbling.append(rate)
        finally:
            broker.stop()
    r, p, t = statistics.median(raw), statistics.median(proc), statistics.median(tumbling)
    print(f"{'path (1 core, median of ' + str(REPEATS) + ')':<44}{'events/s':>12}")
    print(f"{'raw consume + batch decode':<44}{r:>12,.0f}")
    print(f"{'drift processor, tumbling + sliding':<44}{p:>12,.0f}")
    print(f"{'drift processor, tumbling only':<44}{t:>12,.0f}")
    print(f"{'processor / raw':<44}{p / r:>12.2f}")
    print(f"{'with sliding / without':<44}{p / t:>12.2f}")
    print(
        f"DriftScores per run: {outs} with sliding, {outs_t} without; runs raw "
        f"{[round(x) for x in raw]}, with {[round(x) for x in proc]}, "
        f"without {[round(x) for x in tumbling]}"
    )


if __name__ == "__main__":
    main()
