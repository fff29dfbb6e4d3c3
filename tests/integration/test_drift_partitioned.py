"""Partitioned drift processing on the embedded broker: one model over six partitions.

Events are keyed by request id, so every partition holds a share of every window. The
partitioned drift processors send window partials to ``drift.partials`` and the merge
step turns them into DriftScores. One processor instance and a group of three (with two
merge instances) must give identical DriftScores, each window once; a merge step
stopped half way and started again must emit every window exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_PARTIALS, DRIFT_SCORES, INFERENCE_EVENTS, TopicSpec
from stream.merge_app import build_merge_loop
from stream.runtime.loop import ProcessorLoop
from stream.settings import DriftMergeSettings, DriftStatsSettings
from tests.integration.test_drift_processor_support import (
    MODEL,
    T0,
    breast_cancer,
    event,
    loop_for,
    natural,
    read_scores,
    running,
    window_events,
    write_profiles,
)

PARTITIONS = INFERENCE_EVENTS.partitions
#: 3 tumbling windows, sliding windows ending at minutes 1..9 (watermark 9:30).
EXPECTED = 3 + 9


def _stream() -> list[tuple[int | None, str, bytes]]:
    """(partition or None, key, value): three windows keyed by request id (drift in the
    third), then one event per partition at 10:00, which closes them all."""
    rng = np.random.default_rng(3)
    x, names = breast_cancer()
    out: list[tuple[int | None, str, bytes]] = []
    for window, shift in enumerate([0.0, 0.0, 2.0]):
        values = window_events(MODEL, window, 600, rng, shift)
        out += [(None, f"request-{window}-{i}", v) for i, v in enumerate(values)]
    out += [
        (p, f"closing-{p}", event(MODEL, T0 + 600_000, x[p], names, 800_000 + p))
        for p in range(PARTITIONS)
    ]
    return out


def _produce(
    settings: KafkaSettings, topic: str, records: list[tuple[int | None, str, bytes]]
) -> None:
    producer = Producer(producer_config(settings))
    for partition, key, value in records:
        if partition is None:
            producer.produce(topic, value=value, key=key.encode())
        else:
            producer.produce(topic, value=value, key=key.encode(), partition=partition)
        producer.poll(0)
    assert producer.flush(30) == 0


def _topics(settings: KafkaSettings) -> list[TopicSpec]:
    specs = [
        s.prefixed(settings.topic_prefix)
        for s in (INFERENCE_EVENTS, DRIFT_PARTIALS, DRIFT_SCORES, DEAD_LETTERS)
    ]
    ensure_topics(make_admin(settings), specs)
    return specs


def _merge_loop(settings: KafkaSettings, profiles: Path, group: str, state: Path) -> ProcessorLoop:
    return build_merge_loop(
        settings,
        DriftMergeSettings(
            group_id=group, state_dir=state, poll_timeout_s=0.2, metrics_port=0, commit_interval_s=0
        ),
        DriftStatsSettings(reference_path=profiles),
    )


def _normalised(scores: list[dict[str, Any]], topic: str) -> dict[tuple[str, str, str, int], Any]:
    by_key = {natural(s): s for s in scores}
    assert len(by_key) == len(scores), "each window exactly once"
    for score in scores:  # lineage names the run's (prefixed) topic; offsets must agree
        for offset_range in score["lineage"]:
            assert offset_range["topic"] == topic
            offset_range["topic"] = INFERENCE_EVENTS.name
    return by_key


def test_one_and_three_partitioned_instances_give_identical_drift_scores(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    stream = _stream()
    results = []
    for run, instances, mergers in (("one", 1, 1), ("three", 3, 2)):
        settings = kafka_settings.model_copy(
            update={"topic_prefix": f"{kafka_settings.topic_prefix}{run}."}
        )
        events, _, scores_topic, _ = _topics(settings)
        _produce(settings, events.name, stream)
        loops = [
            loop_for(settings, profiles, f"{run}-drift", tmp_path / run, partitioned=True,
                     progress_interval_s=0.0)
            for _ in range(instances)
        ] + [
            _merge_loop(settings, profiles, f"{run}-merge", tmp_path / f"{run}-merge")
            for _ in range(mergers)
        ]  # fmt: skip
        with running(loops):
            scores = read_scores(settings, scores_topic.name, EXPECTED, timeout_s=90)
        by_key = _normalised(scores, events.name)
        assert len(by_key) == EXPECTED
        if instances == 3:
            assert sum(1 for loop in loops[:3] if loop.stats.messages) >= 2, "work was spread"
        results.append(by_key)
    assert results[0] == results[1]
    tumbling = sorted((s for s in results[0].values() if s["window_kind"] == "tumbling"),
                      key=natural)  # fmt: skip
    assert [s["event_count"] for s in tumbling] == [600, 600, 600]
    assert [s["drifted"] for s in tumbling] == [False, False, True]
    assert {len({r["partition"] for r in s["lineage"]}) for s in tumbling} == {PARTITIONS}


def test_merge_step_restarted_half_way_emits_every_window_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    stream = _stream()
    events, _, scores_topic, _ = _topics(kafka_settings)
    half = 1050  # window 0 and three quarters of window 1: window 0 closes
    drift = [loop_for(kafka_settings, profiles, "drift", tmp_path / "drift", partitioned=True,
                      progress_interval_s=0.0)]  # fmt: skip
    state = tmp_path / "merge"
    with running(drift):
        _produce(kafka_settings, events.name, stream[:half])
        with running([_merge_loop(kafka_settings, profiles, "merge", state)]):
            first = read_scores(kafka_settings, scores_topic.name, 1, timeout_s=90)
        _produce(kafka_settings, events.name, stream[half:])
        with running([_merge_loop(kafka_settings, profiles, "merge", state)]):
            scores = read_scores(kafka_settings, scores_topic.name, EXPECTED, timeout_s=90)
    assert first, "the first merge instance emitted windows before it stopped"
    by_key = _normalised(scores, events.name)
    assert len(by_key) == EXPECTED
