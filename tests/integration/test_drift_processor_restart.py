"""A drift processor killed with SIGKILL and restarted loses no window and emits none twice."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS
from tests.integration.cli_processes import CliProcess
from tests.integration.test_drift_processor_support import (
    T0,
    breast_cancer,
    event,
    natural,
    produce,
    read_scores,
    window_events,
    write_profiles,
)


def _processor(settings: KafkaSettings, profiles: Path, state: Path, log: Path) -> CliProcess:
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "DRIFTLINE_DRIFT_REFERENCE_PATH": str(profiles),
        "DRIFTLINE_DRIFT_GROUP_ID": "drift-restart",
        "DRIFTLINE_DRIFT_STATE_DIR": str(state),
        "DRIFTLINE_DRIFT_METRICS_PORT": "0",
        "DRIFTLINE_DRIFT_POLL_TIMEOUT_S": "0.2",
        "DRIFTLINE_DRIFT_BATCH_SIZE": "200",
        "DRIFTLINE_DRIFT_COMMIT_INTERVAL_S": "0",
    }
    return CliProcess("drift", ["drift", "run"], env, log, group="drift-restart")


def test_sigkill_mid_stream_then_restart(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    events_topic, scores_topic, _ = make_topics(INFERENCE_EVENTS, DRIFT_SCORES, DEAD_LETTERS)
    models = ["m-a", "m-b", "m-c"]
    profiles = write_profiles(tmp_path / "profiles", models)
    rng = np.random.default_rng(3)
    x, names = breast_cancer()
    windows = 6

    def part(first: int, last: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for w in range(first, last):
            for m in models:
                out += [(m, v) for v in window_events(m, w, 120, rng, 2.0 if w >= 4 else 0.0)]
        return out

    produce(kafka_settings, events_topic, part(0, 3))
    processor = _processor(kafka_settings, profiles, tmp_path / "state", tmp_path / "drift.log")
    processor.start()
    try:
        early = read_scores(kafka_settings, scores_topic, 1)  # it is mid-stream now
        assert early, f"no DriftScore before the kill; log:\n{processor.tail()}"
    finally:
        processor.kill()
    produce(kafka_settings, events_topic, part(3, windows))
    produce(
        kafka_settings,
        events_topic,
        [(m, event(m, T0 + 3_600_000, x[0], names, 7)) for m in models],
    )
    processor.start()
    expected = {(m, "1", "tumbling", T0 + w * 60_000) for m in models for w in range(windows)}
    # sliding windows end every minute while their 15 minutes hold window 0..5: 1..20
    sliding_ends = range(1, windows + 15)
    expected |= {(m, "1", "sliding", T0 + (e - 15) * 60_000) for m in models for e in sliding_ends}
    try:
        # Until every expected window is seen, not a count: a kill between a flush and
        # its commit may repeat windows, and repeats must not end the read early.
        scores = read_scores(
            kafka_settings, scores_topic, len(expected),
            done=lambda got: expected <= {natural(s) for s in got},
        )  # fmt: skip
    finally:
        code = processor.stop()
    assert code == 0, processor.tail()
    by_key: dict[tuple[str, str, str, int], list[dict[str, object]]] = {}
    for s in scores:
        by_key.setdefault(natural(s), []).append(s)
    assert set(by_key) == expected, "a window was lost"
    # At-least-once: only a kill between a flush and its commit can repeat a window, and
    # then identically (idempotent by natural key); de-duplicated, each window is one.
    assert all(c == copies[0] for copies in by_key.values() for c in copies)
    assert len(scores) - len(by_key) <= 2 * len(models), "more repeats than one commit covers"
    tumbling = {k: c[0] for k, c in by_key.items() if k[2] == "tumbling"}
    assert all(s["event_count"] == 120 for s in tumbling.values())
    assert [tumbling[(models[0], "1", "tumbling", T0 + w * 60_000)]["drifted"]
            for w in range(windows)] == [False, False, False, False, True, True]  # fmt: skip
    # Sliding windows after the restart still hold the windows closed before the kill:
    # the replay rebuilt them (120 events per tumbling window in the 15-minute span).
    for m in models:
        counts = [by_key[(m, "1", "sliding", T0 + (e - 15) * 60_000)][0]["event_count"]
                  for e in sliding_ends]  # fmt: skip
        assert counts == [120 * (min(e, windows) - max(0, e - 15)) for e in sliding_ends], m
