"""Partitioned drift processing on the embedded broker: one model over six partitions.

Events are keyed by request id, so every partition holds a share of every window. The
partitioned drift processors send window partials to ``drift.partials`` and the merge
step turns them into DriftScores. One processor instance and a group of three (with two
merge instances) must give identical DriftScores, each window once; a merge step
stopped half way and started again must emit every window exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
from confluent_kafka import Message

from schemas.catalog import DRIFT_PARTIAL
from schemas.dead_letters import GROUP, REASON, SOURCE_OFFSET, SOURCE_TOPIC
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS
from stream.partials import Source, WindowPartial
from stream.partials_codec import partial_to_record
from stream.performance import WindowPerformance
from stream.profiles import FileProfileSource
from stream.stats import WindowSketch
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.partitioned_helpers import (
    PARTITIONS,
    Sent,
    by_window,
    closing,
    merge_loop,
    partitioned_topics,
    produce_to,
    request_keyed,
)
from tests.integration.test_drift_processor_support import (
    CODEC,
    MODEL,
    T0,
    breast_cancer,
    event,
    loop_for,
    natural,
    read_scores,
    running,
    write_profiles,
)

#: 3 tumbling windows, sliding windows ending at minutes 1..9 (watermark 9:30).
EXPECTED = 3 + 9


def _stream() -> list[Sent]:
    """Three windows keyed by request id (drift in the third), then one event per
    partition at 10:00, which closes them all."""
    rng = np.random.default_rng(3)
    out: list[Sent] = []
    for window, shift in enumerate([0.0, 0.0, 2.0]):
        out += request_keyed(window, 600, rng, shift)
    return out + closing(T0 + 600_000)


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
        events, _, scores_topic, _ = partitioned_topics(settings)
        produce_to(settings, events.name, stream)
        loops = [
            loop_for(settings, profiles, f"{run}-drift", tmp_path / run, partitioned=True,
                     progress_interval_s=0.0)
            for _ in range(instances)
        ] + [
            merge_loop(settings, profiles, f"{run}-merge", tmp_path / f"{run}-merge")
            for _ in range(mergers)
        ]  # fmt: skip
        with running(loops):
            scores = read_scores(settings, scores_topic.name, EXPECTED, timeout_s=90)
        by_key = by_window(scores, events.name)
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
    events, _, scores_topic, _ = partitioned_topics(kafka_settings)
    half = 1050  # window 0 and three quarters of window 1: window 0 closes
    drift = [loop_for(kafka_settings, profiles, "drift", tmp_path / "drift", partitioned=True,
                      progress_interval_s=0.0)]  # fmt: skip
    state = tmp_path / "merge"
    with running(drift):
        produce_to(kafka_settings, events.name, stream[:half])
        with running([merge_loop(kafka_settings, profiles, "merge", state)]):
            first = read_scores(kafka_settings, scores_topic.name, 1, timeout_s=90)
        produce_to(kafka_settings, events.name, stream[half:])
        with running([merge_loop(kafka_settings, profiles, "merge", state)]):
            scores = read_scores(kafka_settings, scores_topic.name, EXPECTED, timeout_s=90)
    assert first, "the first merge instance emitted windows before it stopped"
    by_key = by_window(scores, events.name)
    assert len(by_key) == EXPECTED


def _bad_partials(profiles: Path) -> list[tuple[bytes, str]]:
    """(value, the dead-letter reason it must get): bytes that are no record, an
    InferenceEvent where partials go, and DriftPartials the merge step cannot take."""
    profile = FileProfileSource(profiles).get(MODEL, "1")
    assert profile is not None
    x, names = breast_cancer()
    share = WindowPartial(
        model=MODEL, version="1", kind="tumbling", start_ms=T0, end_ms=T0 + 60_000,
        source=Source("inference.events", 0), sketch=WindowSketch(profile).update(x[:50]),
        performance=WindowPerformance(), late_event_count=0, ranges=[(0, 49)],
        change_points=[],
    )  # fmt: skip
    unknown, other_reference, too_few_bins = (partial_to_record(share) for _ in range(3))
    unknown["window"]["model_name"] = "no-such-model"
    other_reference["window"]["sketch"]["reference_id"] = "another-reference"
    counts = too_few_bins["window"]["sketch"]["numeric"]["counts"]
    too_few_bins["window"]["sketch"]["numeric"]["counts"] = counts[:-1]
    return [
        (b"\x00not a record", "bad_magic"),
        (event(MODEL, T0, x[0], names, 900_000), "wrong_record_type"),
        (CODEC.encode(DRIFT_PARTIAL, unknown), "unknown_model"),
        (CODEC.encode(DRIFT_PARTIAL, other_reference), "reference_mismatch"),
        (CODEC.encode(DRIFT_PARTIAL, too_few_bins, check=False), "shape_mismatch"),
    ]


def test_bad_partials_are_dead_lettered_and_the_merge_goes_on(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    events, partials, scores_topic, dead_letters = partitioned_topics(kafka_settings)
    bad = _bad_partials(profiles)
    # keyed by model: on the partition the model's real partials will follow
    produce_to(kafka_settings, partials.name, [(None, MODEL, value) for value, _ in bad])
    produce_to(kafka_settings, events.name, _stream())
    loops = [
        loop_for(kafka_settings, profiles, "drift", tmp_path / "drift", partitioned=True,
                 progress_interval_s=0.0),
        merge_loop(kafka_settings, profiles, "merge", tmp_path / "merge"),
    ]  # fmt: skip
    with running(loops):
        scores = read_scores(kafka_settings, scores_topic.name, EXPECTED, timeout_s=90)
    assert len(by_window(scores, events.name)) == EXPECTED, "the merge went on"
    reader = assigned_consumer(kafka_settings, dead_letters.name, DEAD_LETTERS.partitions, "dlq")
    try:
        messages = cast(list[Message], read_all(reader, len(bad)))
        letters = [
            {k: v.decode() for k, v in dict(msg.headers() or []).items() if isinstance(v, bytes)}
            for msg in messages
        ]
    finally:
        reader.close()
    assert all(h[SOURCE_TOPIC] == partials.name and h[GROUP] == "merge" for h in letters)
    reasons = sorted((int(h[SOURCE_OFFSET]), h[REASON]) for h in letters)
    assert reasons == [(offset, reason) for offset, (_, reason) in enumerate(bad)]
