"""The drift processor on the embedded broker: scores, late events, dead letters, scale-out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from confluent_kafka import Message

from schemas.admin import ensure_topics, make_admin
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_drift_processor_support import (
    MODEL,
    T0,
    breast_cancer,
    event,
    loop_for,
    natural,
    of_kind,
    produce,
    read_scores,
    running,
    window_events,
    write_profiles,
)


def test_no_drift_then_shift_late_events_and_dead_letters(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    events_topic, scores_topic, dlq_topic = make_topics(
        INFERENCE_EVENTS, DRIFT_SCORES, DEAD_LETTERS
    )
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    rng = np.random.default_rng(7)
    x, names = breast_cancer()
    stream: list[tuple[str, bytes]] = []
    for window, shift in enumerate([0.0, 0.0, 2.0, 2.0]):
        stream += [(MODEL, v) for v in window_events(MODEL, window, 300, rng, shift)]
        if window == 1:  # window 0 closed by now: these two are late
            stream += [
                (MODEL, event(MODEL, T0 + 1_000 + i, x[i], names, 900_000 + i)) for i in range(2)
            ]
            stream += [(MODEL, b"not avro"), (MODEL, b"\xc3\x01garbage"), (MODEL, b"")]
        if window == 2:  # a model without a reference profile: counted, never scored
            stream += [("nobody", event("nobody", T0 + 130_000, x[0], names, 1))]
    stream.append((MODEL, event(MODEL, T0 + 10 * 60_000, x[0], names, 999_999)))  # closes 0..3
    produce(kafka_settings, events_topic, stream)

    loop = loop_for(kafka_settings, profiles, "drift-a", tmp_path / "state")
    with running([loop]):
        both = read_scores(kafka_settings, scores_topic, 4 + 9)  # tumbling and sliding
    scores, sliding = of_kind(both, "tumbling"), of_kind(both, "sliding")
    assert [s["window_start"] for s in scores] == [T0 + w * 60_000 for w in range(4)]
    assert [s["event_count"] for s in scores] == [300] * 4
    assert [s["drifted"] for s in scores] == [False, False, True, True]
    assert [s["late_event_count"] for s in scores] == [0, 2, 0, 0]
    assert all(s["model_name"] == MODEL and s["model_version"] == "1" for s in scores)
    drifted = {f["feature"] for f in scores[2]["features"] if f["drifted"]}
    assert set(names[:5]) <= drifted
    dlq = assigned_consumer(kafka_settings, dlq_topic, 1, "dlq")
    dead = [m.value() for m in read_all(dlq, 3) if isinstance(m, Message)]
    dlq.close()
    assert sorted(v or b"" for v in dead) == sorted([b"not avro", b"\xc3\x01garbage", b""])
    assert loop.stats.dead_letters == 3
    # Sliding windows (15 min, every minute): the merge of every tumbling window so far,
    # at every minute the watermark passed (9:30 after the closing event at 10:00).
    assert [s["window_end"] for s in sliding] == [T0 + w * 60_000 for w in range(1, 10)]
    assert all(s["window_end"] - s["window_start"] == 900_000 for s in sliding)
    assert [s["event_count"] for s in sliding] == [300, 600, 900] + [1200] * 6
    assert [s["late_event_count"] for s in sliding] == [0, 2] + [0] * 7
    assert [s["drifted"] for s in sliding] == [False, False] + [True] * 7
    assert sliding[3]["drift_score"] == scores[3]["drift_score"]  # half shifted: 5 of 30
    assert all(s["drift_score"] == sliding[3]["drift_score"] for s in sliding[3:])


def test_one_and_three_instances_give_identical_drift_scores(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """Same input, one consumer vs a group of three: the same DriftScores, key for key."""
    models = [f"model-{i}" for i in range(5)]
    profiles = write_profiles(tmp_path / "profiles", models)
    rng = np.random.default_rng(11)
    x, names = breast_cancer()
    stream: list[tuple[str, bytes]] = []
    for window in range(3):
        for k, model in enumerate(models):
            shift = 1.5 if (k % 2 and window == 2) else 0.0
            stream += [(model, v) for v in window_events(model, window, 150, rng, shift)]
    stream += [(m, event(m, T0 + 600_000, x[0], names, 5)) for m in models]
    expected = len(models) * (3 + 9)  # 3 tumbling, sliding at minutes 1..9 (watermark 9:30)
    results: list[dict[tuple[str, str, str, int], dict[str, object]]] = []
    for run, instances in (("one", 1), ("three", 3)):
        settings = kafka_settings.model_copy(
            update={"topic_prefix": f"{kafka_settings.topic_prefix}{run}."}
        )
        specs = [
            s.prefixed(settings.topic_prefix)
            for s in (INFERENCE_EVENTS, DRIFT_SCORES, DEAD_LETTERS)
        ]
        ensure_topics(make_admin(settings), specs)
        produce(settings, specs[0].name, stream)
        loops = [loop_for(settings, profiles, run, tmp_path / run) for _ in range(instances)]
        with running(loops):
            scores = read_scores(settings, specs[1].name, expected)
        by_key = {natural(s): s for s in scores}
        assert len(scores) == len(by_key) == expected, "each window exactly once"
        for score in scores:  # lineage names the run's (prefixed) topic; offsets must agree
            for offset_range in score["lineage"]:
                assert offset_range["topic"] == specs[0].name
                offset_range["topic"] = INFERENCE_EVENTS.name
        results.append(by_key)
        if instances == 3:
            assert sum(1 for loop in loops if loop.stats.messages) >= 2, "work was spread"
    assert results[0] == results[1]
    flags = [s["drifted"] for s in results[0].values()]
    assert any(flags) and not all(flags)
