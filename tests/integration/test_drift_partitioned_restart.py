"""Partitioned drift mode under SIGKILL: no window lost, none twice, the same DriftScores.

One model's events, keyed by request id, are spread over the six partitions of
``inference.events`` (event ``i`` of a window on partition ``i % 6``, so the test knows
where each one is): six one-minute windows, drift in the last two, then one event per
partition at 60:00 that closes them all. ``driftline drift run`` (partitioned) and
``driftline drift merge`` run as real subprocesses with their state directories.

The stream goes out in three parts. Each part but the last ends with the next window on
partitions 0-2 only: they close a window and send their shares, partitions 3-5 cannot,
so the merge step holds that window waiting. Once the merge step has *committed* that
state, a process is SIGKILLed, the next part goes out and the process starts again: the
drift processor after the first part (window 2 waiting), the merge step after the second
(window 4 waiting). The DriftScores on ``drift.scores`` must then hold every expected
window exactly once and equal, field for field, those of an uninterrupted in-process
run of the same input (only lineage's topic name differs: each run has its own prefix),
the online detectors' merged states included (they update every 10 events here, so they
flag the drift).

The merge step is killed where no DriftScore is between its flush and its commit
(nothing can merge until the next part arrives), so "exactly once" is deterministic
here; killed inside that gap it would repeat its last batch's windows, identically
(at-least-once, as in keyed mode: docs/reliability.md). Shares the drift processor
repeats after a crash are dropped by the merge step (``duplicate``).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import DRIFT_PARTIALS
from stream.exceptions import CheckpointError
from stream.merge import MergeCheckpoint
from tests.integration.cli_processes import ROOT, CliProcess, wait_until
from tests.integration.partitioned_helpers import (
    PARTITIONS,
    Sent,
    by_window,
    closing,
    merge_loop,
    partitioned_topics,
    produce_to,
    read_to_end,
    request_keyed,
)
from tests.integration.test_drift_processor_support import (
    MODEL,
    T0,
    WINDOW_MS,
    loop_for,
    natural,
    read_scores,
    running,
    write_profiles,
)

SHIFTS = [0.0, 0.0, 0.0, 0.0, 2.0, 2.0]
PER_WINDOW = 300
#: Tumbling windows 0-5; sliding (15 minutes, every minute) ending at 1..20 hold them.
EXPECTED = {(MODEL, "1", "tumbling", T0 + w * WINDOW_MS) for w in range(len(SHIFTS))} | {
    (MODEL, "1", "sliding", T0 + (e - 15) * WINDOW_MS) for e in range(1, len(SHIFTS) + 15)
}
#: Events per online-detector update: small, so each partition's detectors update
#: several times and their merged states are part of what is compared.
DETECTOR_BLOCK = 10
#: A restarted member is assigned after about twice the session (embedded broker).
SESSION_MS = 2000
#: Only stops a broken run.
BOUND_S = 60.0

Key = tuple[str, str, str, int]


def _stream() -> list[list[Sent]]:
    """Three parts: windows 0-2 and window 3 on partitions 0-2; window 3 on partitions
    3-5, window 4 and window 5 on partitions 0-2; the rest of window 5 and the closing
    events."""
    rng = np.random.default_rng(11)
    windows = [request_keyed(w, PER_WINDOW, rng, s, spread=True) for w, s in enumerate(SHIFTS)]

    def low(w: int) -> list[Sent]:
        return [r for r in windows[w] if r[0] in (0, 1, 2)]

    def high(w: int) -> list[Sent]:
        return [r for r in windows[w] if r[0] not in (0, 1, 2)]

    return [
        [*windows[0], *windows[1], *windows[2], *low(3)],
        [*high(3), *windows[4], *low(5)],
        [*high(5), *closing(T0 + 3_600_000)],
    ]


def _uninterrupted(settings: KafkaSettings, profiles: Path, state: Path) -> dict[Key, Any]:
    """The DriftScores of one uninterrupted in-process run (a drift loop and a merge loop
    in threads, built as the CLI builds them) over the whole stream, by natural key."""
    events, _, scores_topic, _ = partitioned_topics(settings)
    produce_to(settings, events.name, [r for part in _stream() for r in part])
    loops = [
        loop_for(settings, profiles, "drift", state / "drift", partitioned=True,
                 progress_interval_s=0.0, detector_block_size=DETECTOR_BLOCK),
        merge_loop(settings, profiles, "merge", state / "merge"),
    ]  # fmt: skip
    with running(loops):
        seen = read_scores(
            settings, scores_topic.name, len(EXPECTED), timeout_s=BOUND_S,
            done=lambda got: {natural(s) for s in got} >= EXPECTED,
        )  # fmt: skip
    assert {natural(s) for s in seen} >= EXPECTED, "the uninterrupted run did not finish"
    return by_window(read_to_end(settings, scores_topic.name), events.name)


def _env(settings: KafkaSettings, profiles: Path, values: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_MS),
        "DRIFTLINE_KAFKA_HEARTBEAT_INTERVAL_MS": str(SESSION_MS // 10),
        "DRIFTLINE_DRIFT_REFERENCE_PATH": str(profiles),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",  # the banner reaches the log at once (CliProcess.started)
        **values,
    }


def _processes(settings: KafkaSettings, profiles: Path, tmp: Path) -> list[CliProcess]:
    drift = _env(settings, profiles, {
        "DRIFTLINE_DRIFT_PARTITIONED": "true",
        "DRIFTLINE_DRIFT_PROGRESS_INTERVAL_S": "0",
        "DRIFTLINE_DRIFT_DETECTOR_BLOCK_SIZE": str(DETECTOR_BLOCK),
        "DRIFTLINE_DRIFT_GROUP_ID": "pp-drift",
        "DRIFTLINE_DRIFT_STATE_DIR": str(tmp / "drift-state"),
        "DRIFTLINE_DRIFT_METRICS_PORT": "0",
        "DRIFTLINE_DRIFT_POLL_TIMEOUT_S": "0.2",
        "DRIFTLINE_DRIFT_BATCH_SIZE": "100",
        "DRIFTLINE_DRIFT_COMMIT_INTERVAL_S": "0",
    })  # fmt: skip
    merge = _env(settings, profiles, {
        "DRIFTLINE_DRIFT_MERGE_GROUP_ID": "pp-merge",
        "DRIFTLINE_DRIFT_MERGE_STATE_DIR": str(tmp / "merge-state"),
        "DRIFTLINE_DRIFT_MERGE_METRICS_PORT": "0",
        "DRIFTLINE_DRIFT_MERGE_POLL_TIMEOUT_S": "0.2",
        "DRIFTLINE_DRIFT_MERGE_BATCH_SIZE": "100",
        "DRIFTLINE_DRIFT_MERGE_COMMIT_INTERVAL_S": "0",
    })  # fmt: skip
    return [
        CliProcess("drift", ["drift", "run"], drift, tmp / "drift.log", group="pp-drift"),
        CliProcess("merge", ["drift", "merge"], merge, tmp / "merge.log", group="pp-merge"),
    ]


def _holding(settings: KafkaSettings, state: Path, window: int) -> bool:
    """The merge step has *committed* a checkpoint with the windows before ``window``
    merged and a window waiting (partitions 0-2 sent their shares of ``window``): read
    from its local checkpoint copies (the embedded broker drops commit metadata) and the
    group's committed offsets."""
    topic = DRIFT_PARTIALS.prefixed(settings.topic_prefix).name
    candidates: dict[int, int] = {}  # partition -> commit offset of such a checkpoint
    for partition in range(DRIFT_PARTIALS.partitions):
        path = state / "pp-merge" / f"{topic}-{partition}.json"
        try:
            lines = path.read_text().splitlines() if path.exists() else []
            checkpoint = MergeCheckpoint.from_json(lines[-1]) if lines else None
        except CheckpointError:
            continue
        if (
            checkpoint is not None
            and checkpoint.commit_offset < checkpoint.next_offset  # a window waits
            and (checkpoint.merged_through or 0) >= T0 + window * WINDOW_MS
        ):
            candidates[partition] = checkpoint.commit_offset
    if not candidates:
        return False
    consumer = Consumer(consumer_config(settings, "pp-merge"))  # reads offsets, never joins
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in candidates], timeout=10)
    finally:
        consumer.close()
    return any(candidates[tp.partition] == tp.offset for tp in committed)


def test_sigkilled_drift_processor_and_merge_step_give_the_uninterrupted_scores_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    reference = kafka_settings.model_copy(
        update={"topic_prefix": f"{kafka_settings.topic_prefix}uninterrupted."}
    )
    uninterrupted = _uninterrupted(reference, profiles, tmp_path / "uninterrupted")
    assert set(uninterrupted) == EXPECTED
    events, _, scores_topic, _ = partitioned_topics(kafka_settings)
    parts = _stream()
    drift, merge = _processes(kafka_settings, profiles, tmp_path)
    merge_state = tmp_path / "merge-state"
    produce_to(kafka_settings, events.name, parts[0])
    try:
        drift.start()
        merge.start()
        for victim, holds, part in ((drift, 2, parts[1]), (merge, 4, parts[2])):
            held = wait_until(partial(_holding, kafka_settings, merge_state, holds), BOUND_S)
            assert held, f"window {holds} never waited:\n{drift.tail()}\n{merge.tail()}"
            victim.kill()
            produce_to(kafka_settings, events.name, part)
            victim.start()
        seen = read_scores(
            kafka_settings, scores_topic.name, len(EXPECTED), timeout_s=BOUND_S,
            done=lambda got: {natural(s) for s in got} >= EXPECTED,
        )  # fmt: skip
        missing = EXPECTED - {natural(s) for s in seen}
        assert not missing, f"lost {sorted(missing)}:\n{drift.tail()}\n{merge.tail()}"
        for proc in (drift, merge):  # stopped gracefully, not while still importing
            assert wait_until(proc.started, BOUND_S), proc.tail()
    finally:
        codes = [drift.stop(), merge.stop()]
    assert codes == [0, 0], (drift.tail(), merge.tail())
    assert [(p.starts, p.kills) for p in (drift, merge)] == [(2, 1), (2, 1)]

    scores = read_to_end(kafka_settings, scores_topic.name)  # all of it, repeats included
    got = by_window(scores, events.name)  # asserts each window once
    assert set(got) == EXPECTED
    differing = sorted(k for k in EXPECTED if got[k] != uninterrupted[k])
    assert not differing, f"differ from the uninterrupted run: {differing}"
    tumbling = [got[k] for k in sorted(EXPECTED) if k[2] == "tumbling"]
    assert [s["event_count"] for s in tumbling] == [PER_WINDOW] * len(SHIFTS)
    assert [s["drifted"] for s in tumbling] == [s > 0 for s in SHIFTS]
    assert {len({r["partition"] for r in s["lineage"]}) for s in tumbling} == {PARTITIONS}
    flagged = [sum(c["change_points"] for c in s["change_points"]) for s in tumbling]
    assert sum(flagged[4:]) > 0, f"the detectors flagged no change point: {flagged}"
