"""SLO processor end to end vs raw consume + decode of the same topic, one core.

Preloads 200,000 InferenceEvents (2 models, baseline and canary, 30 features, lognormal
latencies, 6 % client and 2 % server errors, 1-minute windows of ~10,000 events) into the
embedded broker, then, alternating, 3 times each:

- raw: ``consume(num_messages=5000)`` + the columnar batch decoder, nothing else;
- processor: the real SLO :class:`~stream.runtime.loop.ProcessorLoop` step (consume,
  decode, windows, counts and latency sketch, close, burn rates, produce SloWindows,
  flush, commit).

Also, without a broker: the latency sketch's batch update vs ``DDSketch.add`` value by
value on the same 200,000 latencies (the decision in docs/decisions.md).
The process is pinned to one CPU (librdkafka's threads too). Medians.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from ddsketch import DDSketch

from driftline.embedded import broker_process
from driftline.ports import free_port
from schemas.admin import ensure_topics, make_admin
from schemas.inference_batch import decode_inference_batch
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS, SLO_WINDOWS
from stream.settings import SloSettings
from stream.slo import LatencySketch
from stream.slo_app import build_slo_loop
from tests.integration.test_drift_processor_support import CODEC, T0, produce
from tests.records_factory import inference_event

EVENTS = 200_000
MODELS = ("bench-a", "bench-b")
PER_WINDOW = 10_000
REPEATS = 3


def _preload(settings: KafkaSettings, topic: str) -> None:
    rng = np.random.default_rng(0)
    records: list[tuple[str, bytes]] = []
    windows = EVENTS // len(MODELS) // PER_WINDOW
    outcomes = rng.choice(["ok", "client_error", "server_error"], EVENTS, p=[0.92, 0.06, 0.02])
    latency = rng.lognormal(4.0, 1.0, EVENTS)
    i = 0
    for w in range(windows):
        times = T0 + w * 60_000 + np.sort(rng.integers(0, 60_000, PER_WINDOW))
        for model in MODELS:
            for t in times.tolist():
                value = inference_event(
                    i, model, event_time=t, variant="canary" if i % 10 == 0 else "baseline",
                    latency_ms=float(latency[i]), outcome=str(outcomes[i]),
                )  # fmt: skip
                records.append((model, CODEC.encode("InferenceEvent", value, check=False)))
                i += 1
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


def _processor(settings: KafkaSettings, state: Path, group: str) -> tuple[float, int]:
    loop = build_slo_loop(
        settings, SloSettings(group_id=group, state_dir=state, metrics_port=0, commit_interval_s=1)
    )
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


def _sketch_paths() -> tuple[float, float]:
    """Values/s of LatencySketch.update (batches of 5,000) and of DDSketch.add."""
    x = np.random.default_rng(1).lognormal(4.0, 1.0, EVENTS)
    batched, single = [], []
    for _ in range(REPEATS):
        sketch = LatencySketch(0.01)
        start = time.perf_counter()
        for part in np.array_split(x, EVENTS // 5000):
            sketch.update(part)
        batched.append(EVENTS / (time.perf_counter() - start))
        plain = DDSketch(0.01)
        start = time.perf_counter()
        for value in x.tolist():
            plain.add(value)
        single.append(EVENTS / (time.perf_counter() - start))
    return statistics.median(batched), statistics.median(single)


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
            specs = [s.prefixed("bench.") for s in (INFERENCE_EVENTS, SLO_WINDOWS, DEAD_LETTERS)]
            ensure_topics(make_admin(settings), specs)
            t = time.perf_counter()
            _preload(settings, specs[0].name)
            print(f"preloaded {EVENTS:,} events in {time.perf_counter() - t:.1f} s")
            raw, proc, outs = [], [], 0
            for i in range(REPEATS):
                raw.append(_raw(settings, specs[0].name, f"raw-{i}"))
                rate, outs = _processor(settings, root / f"state-{i}", f"proc-{i}")
                proc.append(rate)
        finally:
            broker.stop()
    r, p = statistics.median(raw), statistics.median(proc)
    batched, single = _sketch_paths()
    print(f"{'path (1 core, median of ' + str(REPEATS) + ')':<44}{'events/s':>12}")
    print(f"{'raw consume + batch decode':<44}{r:>12,.0f}")
    print(f"{'SLO processor end to end':<44}{p:>12,.0f}")
    print(f"{'processor / raw':<44}{p / r:>12.2f}")
    print(f"{'latency sketch, batch update':<44}{batched:>12,.0f}")
    print(f"{'latency sketch, DDSketch.add per value':<44}{single:>12,.0f}")
    print(f"{'batch / per value':<44}{batched / single:>12.1f}")
    print(
        f"SloWindows per processor run: {outs}; runs raw {[round(x) for x in raw]}, "
        f"processor {[round(x) for x in proc]}"
    )


if __name__ == "__main__":
    main()
