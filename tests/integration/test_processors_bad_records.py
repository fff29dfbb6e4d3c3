"""10,000 fuzzed records mixed into a valid stream, through the real drift and SLO processors.

Both processors run (each in its own consumer group, as in production) on one
InferenceEvent topic of the embedded broker. Every bad record must reach the dead-letter
topic once per processor, with a reason; every good record must be counted in exactly
the windows it belongs to (tumbling DriftScores' ``event_count``, SloWindows'
``request_count``); and neither loop may die (their threads are watched: an exception
that escapes ``run`` fails the test). Records carry their number in a header, which
dead letters keep, so each one is matched back to what was sent.

Kinds of bad record (seeded): random bytes (any length, also empty), truncated Avro,
an unknown writer fingerprint, NaN in a feature or in the latency, fields missing (an
older writer's shorter record under InferenceEvent's fingerprint), and a string whose
declared length is far beyond the record (the decoder must not try to allocate it).
Huge but valid strings (64 KiB request ids) are good records and must be counted.
"""

from __future__ import annotations

import io
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
from confluent_kafka import Message, Producer

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import SINGLE_OBJECT_MAGIC, SingleObjectCodec
from schemas.dead_letters import GROUP, REASON
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS, SLO_WINDOWS
from stream.runtime.loop import ProcessorLoop
from stream.settings import SloSettings
from stream.slo_app import build_slo_loop
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_drift_processor_support import (
    MODEL,
    T0,
    WINDOW_MS,
    breast_cancer,
    loop_for,
    read_scores,
    write_profiles,
)

CODEC = SingleObjectCodec()
BAD = 10_000
GOOD_PER_WINDOW = 400
WINDOWS = 4
KINDS = ("random_bytes", "truncated", "fingerprint", "nan_feature", "nan_latency",
         "missing_fields", "huge_length")  # fmt: skip


def _good(i: int, t_ms: int, row: np.ndarray, names: list[str], **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event_id": f"e-{i}", "request_id": f"r-{i}", "event_time": t_ms,
        "model_name": MODEL, "model_version": "1", "variant": "baseline",
        "features": dict(zip(names, row.tolist(), strict=True)),
        "categorical_features": {}, "prediction": 1.0, "probabilities": {"1": 0.9, "0": 0.1},
        "latency_ms": 2.0 + i % 7, "outcome": "ok", "error_type": None, "entity_id": None,
        "trace_id": None, "source": "fuzz",
    }  # fmt: skip
    value.update(changes)
    return value


def _missing_fields(value: dict[str, Any]) -> bytes:
    """An InferenceEvent written without its last fields, under the real fingerprint."""
    schema = CODEC.catalog.current(INFERENCE_EVENT).raw
    shorter = {**schema, "fields": schema["fields"][:-4], "name": "Shorter"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(shorter), value)
    return CODEC.encode(INFERENCE_EVENT, value)[:10] + body.getvalue()


def _huge_length(value: dict[str, Any]) -> bytes:
    """``event_id`` (the first field) claiming 2**60 bytes: zig-zag varint of 2**61."""
    full = CODEC.encode(INFERENCE_EVENT, value)
    header, body = full[:10], full[10:]
    old_len = len(value["event_id"].encode())
    varint, n = bytearray(), 2 * (2**60)
    while n >= 0x80:
        varint.append((n & 0x7F) | 0x80)
        n >>= 7
    varint.append(n)
    return header + bytes(varint) + body[1 + old_len :]


#: The dead-letter reason each kind must get (random bytes: whatever they look like).
REASONS = {"truncated": "truncated", "fingerprint": "unknown_schema",
           "nan_feature": "invalid_value", "nan_latency": "invalid_value",
           "missing_fields": "truncated", "huge_length": "truncated"}  # fmt: skip


def _stream(seed: int) -> tuple[list[tuple[bytes, int]], dict[int, str], int]:
    """(value, record number) in send order, the bad ones' kinds by number, the good count."""
    rng = np.random.default_rng(seed)
    x, names = breast_cancer()
    good: list[tuple[int, bytes]] = []  # (event time, value)
    n = 0
    for w in range(WINDOWS):
        for t in np.sort(rng.integers(0, WINDOW_MS, GOOD_PER_WINDOW)) + T0 + w * WINDOW_MS:
            row = x[rng.integers(0, len(x))]
            huge = {"request_id": "h" * 65_536} if n % 97 == 0 else {}
            good.append(
                (int(t), CODEC.encode(INFERENCE_EVENT, _good(n, int(t), row, names, **huge)))
            )
            n += 1
    bad: list[tuple[str, bytes]] = []
    for b in range(BAD):
        kind = KINDS[b % len(KINDS)]
        t = T0 + int(rng.integers(0, WINDOWS * WINDOW_MS))
        value = _good(10**6 + b, t, x[rng.integers(0, len(x))], names)
        if kind == "random_bytes":
            bad.append((kind, rng.bytes(int(rng.integers(0, 400)))))
        elif kind == "truncated":
            full = CODEC.encode(INFERENCE_EVENT, value)
            bad.append((kind, full[: int(rng.integers(1, len(full)))]))
        elif kind == "fingerprint":
            body = CODEC.encode(INFERENCE_EVENT, value)[10:]
            bad.append((kind, SINGLE_OBJECT_MAGIC + rng.bytes(8) + body))
        elif kind == "nan_feature":
            value["features"][names[int(rng.integers(0, len(names)))]] = math.nan
            bad.append((kind, CODEC.encode(INFERENCE_EVENT, value, check=False)))
        elif kind == "nan_latency":
            nan = {**value, "latency_ms": math.nan}
            bad.append((kind, CODEC.encode(INFERENCE_EVENT, nan, check=False)))
        elif kind == "missing_fields":
            bad.append((kind, _missing_fields(value)))
        else:
            bad.append((kind, _huge_length(value)))
    # Mix: bad records at random places among the good ones (good ones keep their order).
    slots = np.sort(rng.integers(0, len(good) + 1, BAD))
    out: list[tuple[bytes, int]] = []
    bad_numbers: dict[int, str] = {}
    gi = 0
    for number_of_bad, slot in enumerate(slots):
        while gi < slot:
            out.append((good[gi][1], len(out)))
            gi += 1
        bad_numbers[len(out)] = bad[number_of_bad][0]
        out.append((bad[number_of_bad][1], len(out)))
    out += [(v, len(out) + k) for k, (_, v) in enumerate(good[gi:])]
    closer = _good(n, T0 + 10 * WINDOW_MS, x[0], names)  # closes windows 0..3 (not counted)
    out.append((CODEC.encode(INFERENCE_EVENT, closer), len(out)))
    return out, bad_numbers, len(good)


@contextmanager
def _watched(loops: list[ProcessorLoop]) -> Iterator[list[BaseException]]:
    """Run loops in threads; whatever escapes ``run`` is collected (must stay empty)."""
    errors: list[BaseException] = []

    def run(loop: ProcessorLoop) -> None:
        try:
            loop.run()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(loop,), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield errors
        assert all(t.is_alive() for t in threads), f"a processor stopped: {errors}"
    finally:
        for loop, thread in zip(loops, threads, strict=True):
            loop.stop()
            thread.join(30)


def test_fuzzed_records_are_dead_lettered_and_every_good_one_is_counted(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    events, scores_topic, windows_topic, dlq_topic = make_topics(
        INFERENCE_EVENTS, DRIFT_SCORES, SLO_WINDOWS, DEAD_LETTERS
    )
    stream, bad_numbers, good_count = _stream(seed=12)
    producer = Producer(producer_config(kafka_settings))
    for value, number in stream:
        while True:
            try:
                producer.produce(events, value=value, key=MODEL.encode(),
                                 headers=[("n", b"%d" % number)])  # fmt: skip
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0

    drift = loop_for(kafka_settings, write_profiles(tmp_path / "profiles", [MODEL]), "fz-drift",
                     tmp_path / "drift-state", batch_size=2000)  # fmt: skip
    slo = build_slo_loop(kafka_settings, SloSettings(
        group_id="fz-slo", state_dir=tmp_path / "slo-state", poll_timeout_s=0.2, metrics_port=0,
        commit_interval_s=0, allowed_lateness_s=0))  # fmt: skip
    with _watched([drift, slo]) as errors:
        scores = read_scores(kafka_settings, scores_topic, WINDOWS + 9)  # tumbling + sliding
        windows = read_scores(kafka_settings, windows_topic, WINDOWS)
        dlq = assigned_consumer(kafka_settings, dlq_topic, DEAD_LETTERS.partitions, "fz-dlq")
        letters = [m for m in read_all(dlq, 2 * len(bad_numbers), 90) if isinstance(m, Message)]
        dlq.close()
    assert not errors

    tumbling = sorted((s for s in scores if s["window_kind"] == "tumbling"),
                      key=lambda s: s["window_start"])  # fmt: skip
    assert [s["window_start"] for s in tumbling] == [T0 + w * WINDOW_MS for w in range(WINDOWS)]
    assert [s["event_count"] for s in tumbling] == [GOOD_PER_WINDOW] * WINDOWS
    assert sum(s["event_count"] for s in tumbling) == good_count
    slo_windows = sorted(windows, key=lambda s: s["window_start"])
    assert [s["request_count"] for s in slo_windows] == [GOOD_PER_WINDOW] * WINDOWS
    assert drift.stats.dead_letters == slo.stats.dead_letters == len(bad_numbers)

    by_group: dict[bytes, Counter[int]] = {b"fz-drift": Counter(), b"fz-slo": Counter()}
    wrong_reason: list[tuple[str, str]] = []
    for letter in letters:
        headers = dict(letter.headers() or [])
        group, reason = headers[GROUP], headers[REASON]
        assert isinstance(group, bytes) and isinstance(reason, bytes) and reason
        number = int(headers["n"] or b"-1")
        by_group[group][number] += 1
        want = REASONS.get(bad_numbers.get(number, ""), reason.decode())
        if reason.decode() != want:
            wrong_reason.append((bad_numbers.get(number, "good"), reason.decode()))
    for group, seen in by_group.items():
        assert set(seen) == set(bad_numbers), (group, len(set(seen) ^ set(bad_numbers)))
        assert set(seen.values()) == {1}, f"{group!r}: a bad record dead-lettered twice"
    assert not wrong_reason, Counter(wrong_reason)
