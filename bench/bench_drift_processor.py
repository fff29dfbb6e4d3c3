"""Drift processor end to end vs raw consume + decode of the same topic, one core.

Preloads 200,000 InferenceEvents (2 models, 30 breast-cancer features, 1-minute windows
of ~10,000 events) into the embedded broker, then, alternating, 3 times each:

- raw: ``consume(num_messages=5000)`` + the columnar batch decoder, nothing else;
- processor: the real :class:`~stream.runtime.loop.DriftLoop` step (consume, decode,
  windows, sketch update, close, score, produce DriftScores, flush, commit), with the
  default sliding windows (15 min every minute: a second DriftScore per close, merged
  from the kept tumbling sketches) and without them (``sliding_s=0``), both without
  the feedback join;
- processor + feedback: the default (sliding) processor with the feedback join on and
  100,000 FeedbackEvents (labels for half the predictions) preloaded on the feedback
  topic, read and joined in the same steps.

The process is pinned to one CPU (librdkafka's threads too). Medians of events/s.

Each processor run starts its clock once its producer is ready (one record to a
bench-only topic, acknowledged): librdkafka's idempotent producer takes 0.5-1 s to get
its producer id, a one-off that a deployed processor pays during its ~3 s group join;
earlier runs of this benchmark (before 2026-11-30) counted it in the first window's
flush. The warm-up happens before the consumer is assigned, so it prefetches nothing.
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
from schemas.catalog import FEEDBACK_EVENT
from schemas.inference_batch import decode_inference_batch
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import (
    DEAD_LETTERS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
    TopicSpec,
)
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
WARM_UP = TopicSpec("bench.warm-up", 1, 3_600_000, "delete", "none", "producer warm-up")


def _preload(settings: KafkaSettings, topic: str) -> None:
    rng = np.random.default_rng(0)
    per_model_windows = EVENTS // len(MODELS) // PER_WINDOW
    records: list[tuple[str, bytes]] = []
    for w in range(per_model_windows):
        for m in MODELS:
            records += [(m, v) for v in window_events(m, w, PER_WINDOW, rng, 1.0 if w > 5 else 0)]
    produce(settings, topic, records)


def _preload_feedback(settings: KafkaSettings, topic: str) -> int:
    """Labels for every other prediction of :func:`_preload` (same request ids)."""
    rng = np.random.default_rng(1)
    records: list[tuple[str, bytes]] = []
    for w in range(EVENTS // len(MODELS) // PER_WINDOW):
        for m in MODELS:
            for i in range(0, PER_WINDOW, 2):
                request_id = f"r-{m}-{w * 100_000 + i}"
                value = {
                    "feedback_id": f"f-{request_id}",
                    "request_id": request_id,
                    "model_name": m,
                    "model_version": None,
                    "label": float(rng.integers(0, 2)),
                    "event_time": 0,
                    "source": "bench",
                }
                records.append((request_id, CODEC.encode(FEEDBACK_EVENT, value)))
    produce(settings, topic, records)
    return len(records)


Run = tuple[float, float]  # events/s, CPU us/event (this process, librdkafka's threads too)


def _raw(settings: KafkaSettings, topic: str, group: str) -> Run:
    consumer = Consumer(consumer_config(settings, group))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(INFERENCE_EVENTS.partitions)])
    seen = 0
    start, cpu = time.perf_counter(), time.process_time()
    while seen < EVENTS:
        msgs = [m for m in consumer.consume(num_messages=5000, timeout=1.0) if m.error() is None]
        by_partition: dict[int, list[bytes | None]] = {}
        for m in msgs:
            by_partition.setdefault(m.partition() or 0, []).append(m.value())
        for values in by_partition.values():
            decode_inference_batch(values, CODEC)
        seen += len(msgs)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    consumer.close()
    return EVENTS / elapsed, cpu / EVENTS * 1e6


def _processor(
    settings: KafkaSettings,
    profiles: Path,
    state: Path,
    group: str,
    sliding_s: float = 900.0,
    feedback: bool = False,
) -> tuple[Run, int, int]:
    """Events/s and CPU, DriftScores and labels read of one run (join on when ``feedback``)."""
    loop = loop_for(settings, profiles, group, state, sliding_s=sliding_s, feedback_join=feedback)
    loop.commit_interval_s = 1.0
    loop.producer.produce(WARM_UP.name, value=b"warm-up")
    if loop.producer.flush(30):
        raise RuntimeError("warm-up record not acknowledged")
    loop.consumer.assign(
        [TopicPartition(loop.input_topic, p, 0) for p in range(INFERENCE_EVENTS.partitions)]
    )
    if loop.feedback is not None:
        loop.feedback.start()
    start, cpu = time.perf_counter(), time.process_time()
    while loop.stats.messages < EVENTS:
        loop.step()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    outputs = loop.stats.outputs
    joined = 0 if loop.feedback is None else loop.feedback.read_count
    loop.consumer.close()
    if loop.feedback is not None:
        loop.feedback.close()
    return (EVENTS / elapsed, cpu / EVENTS * 1e6), outputs, joined


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
            specs = [
                s.prefixed("bench.")
                for s in (INFERENCE_EVENTS, DRIFT_SCORES, DEAD_LETTERS, INFERENCE_FEEDBACK)
            ]
            ensure_topics(make_admin(settings), [*specs, WARM_UP])
            t = time.perf_counter()
            _preload(settings, specs[0].name)
            labels = _preload_feedback(settings, specs[3].name)
            print(
                f"preloaded {EVENTS:,} events, {labels:,} labels in {time.perf_counter() - t:.1f} s"
            )
            profiles = write_profiles(root / "profiles", list(MODELS))
            raw: list[Run] = []
            proc: list[Run] = []
            tumbling: list[Run] = []
            fed: list[Run] = []
            outs, outs_t, read = 0, 0, 0
            for i in range(REPEATS):
                raw.append(_raw(settings, specs[0].name, f"raw-{i}"))
                run, outs, _ = _processor(settings, profiles, root / f"state-{i}", f"proc-{i}")
                proc.append(run)
                run, outs_t, _ = _processor(
                    settings, profiles, root / f"state-t{i}", f"tumbling-{i}", sliding_s=0
                )
                tumbling.append(run)
                run, _, read = _processor(
                    settings, profiles, root / f"state-f{i}", f"fed-{i}", feedback=True
                )
                fed.append(run)
        finally:
            broker.stop()
    r, p, t, f = (statistics.median(x[0] for x in runs) for runs in (raw, proc, tumbling, fed))
    print(f"{'path (1 core, median of ' + str(REPEATS) + ')':<44}{'events/s':>12}{'CPU us/ev':>11}")
    for name, runs in (
        ("raw consume + batch decode", raw),
        ("drift processor, tumbling + sliding", proc),
        ("drift processor, tumbling only", tumbling),
        ("drift processor + feedback join", fed),
    ):
        median, cpu = (statistics.median(x[i] for x in runs) for i in (0, 1))
        print(f"{name:<44}{median:>12,.0f}{cpu:>11.2f}")
    print(f"{'processor / raw':<44}{p / r:>12.2f}")
    print(f"{'with sliding / without':<44}{p / t:>12.2f}")
    print(f"{'with feedback join / without':<44}{f / p:>12.2f}")
    print(
        f"DriftScores per run: {outs} with sliding, {outs_t} without; labels read by the "
        f"last join run: {read:,}; runs raw {[round(x[0]) for x in raw]}, with sliding "
        f"{[round(x[0]) for x in proc]}, without {[round(x[0]) for x in tumbling]}, with join "
        f"{[round(x[0]) for x in fed]}"
    )


if __name__ == "__main__":
    main()
