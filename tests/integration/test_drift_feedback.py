"""The drift processor joins FeedbackEvents on the embedded broker: per-variant accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from confluent_kafka import Message
from prometheus_client import REGISTRY

from schemas.catalog import FEEDBACK_EVENT, INFERENCE_EVENT
from schemas.dead_letters import REASON, SOURCE_TOPIC
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, INFERENCE_EVENTS, INFERENCE_FEEDBACK
from stream.runtime.loop import DriftLoop
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_drift_processor_support import (
    CODEC,
    MODEL,
    T0,
    breast_cancer,
    loop_for,
    of_kind,
    produce,
    read_scores,
    running,
    write_profiles,
)

N = 240


def _inference(i: int, t: int, row: np.ndarray, names: list[str], variant: str, p: float) -> bytes:
    return CODEC.encode(
        INFERENCE_EVENT,
        {"event_id": f"e{i}", "request_id": f"r{i}", "event_time": t, "model_name": MODEL,
         "model_version": "1", "variant": variant,
         "features": dict(zip(names, row.tolist(), strict=True)), "categorical_features": {},
         "prediction": 1.0 if p >= 0.5 else 0.0, "probabilities": {"1": p, "0": 1 - p},
         "latency_ms": 1.0, "outcome": "ok", "error_type": None, "entity_id": None,
         "trace_id": None, "source": "test"},
    )  # fmt: skip


def _feedback(request_id: str, label: float | str, n: int) -> bytes:
    return CODEC.encode(
        FEEDBACK_EVENT,
        {"feedback_id": f"f{n}", "request_id": request_id, "model_name": MODEL,
         "model_version": None, "label": label, "event_time": T0 + 200_000, "source": "test"},
    )  # fmt: skip


def _wait(loop: DriftLoop, messages: int, feedback: int, timeout_s: float = 60.0) -> None:
    """Until the loop has read this many inference and feedback records (a bound, not a
    pass/fail timing: the assertions below say what broke)."""
    assert loop.feedback is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if loop.stats.messages >= messages and loop.feedback.read_count >= feedback:
            return
        time.sleep(0.05)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_feedback_joins_per_variant_accuracy_late_labels_and_dead_letters(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    events_topic, feedback_topic, scores_topic, dlq_topic = make_topics(
        INFERENCE_EVENTS, INFERENCE_FEEDBACK, DRIFT_SCORES, DEAD_LETTERS
    )
    profiles = write_profiles(tmp_path / "profiles", [MODEL])
    rng = np.random.default_rng(3)
    x, names = breast_cancer()
    probs = rng.uniform(size=N)
    predicted = (probs >= 0.5).astype(int)
    variants = ["canary" if i % 4 == 0 else "baseline" for i in range(N)]
    truth = np.where(rng.uniform(size=N) < 0.8, predicted, 1 - predicted)  # ~80 % right
    times = T0 + np.sort(rng.integers(0, 60_000, N))
    inference = [
        (MODEL, _inference(i, int(times[i]), x[i], names, variants[i], float(probs[i])))
        for i in range(N)
    ]
    labelled = list(range(0, 200))  # in time for window 0; 200..239 come after it closed
    feedback = [
        (f"r{i}", _feedback(f"r{i}", str(truth[i]) if i % 2 else float(truth[i]), i))
        for i in labelled
    ]
    feedback.append(("r5", _feedback("r5", float(1 - truth[5]), 10_000)))  # duplicate: ignored
    feedback.append(("r-unknown", _feedback("r-unknown", 1.0, 10_001)))  # never predicted
    bad = [("x", b"\xc3\x01not a feedback event"), ("", _feedback("", 1.0, 10_002))]
    produce(kafka_settings, feedback_topic, feedback[:100] + bad)  # some labels come first
    produce(kafka_settings, events_topic, inference)
    produce(kafka_settings, feedback_topic, feedback[100:])

    late_before = _sample(
        "driftline_drift_late_labelled_predictions_total", {"model": MODEL, "version": "1"}
    )
    loop = loop_for(kafka_settings, profiles, "drift-feedback", tmp_path / "state")
    with running([loop]):
        _wait(loop, N, len(feedback) + len(bad))
        closer = _inference(N, T0 + 10 * 60_000, x[0], names, "baseline", 0.9)
        produce(kafka_settings, events_topic, [(MODEL, closer)])
        both = read_scores(kafka_settings, scores_topic, 1 + 9)  # sliding: minutes 1..9
        (score,) = of_kind(both, "tumbling")
        sliding = of_kind(both, "sliding")[0]
        late = [(f"r{i}", _feedback(f"r{i}", float(truth[i]), 20_000 + i)) for i in range(200, N)]
        produce(kafka_settings, feedback_topic, late)
        _wait(loop, N + 1, len(feedback) + len(bad) + len(late))
    late_after = _sample(
        "driftline_drift_late_labelled_predictions_total", {"model": MODEL, "version": "1"}
    )

    # independently from the same events: first label per request id, per variant
    performance = {p["variant"]: p for p in score["performance"]}
    assert set(performance) == {"baseline", "canary"}
    for variant in ("baseline", "canary"):
        mine = [i for i in range(N) if variants[i] == variant]
        with_label = [i for i in mine if i in labelled]
        right = sum(int(predicted[i] == truth[i]) for i in with_label)
        got = performance[variant]
        assert got["prediction_count"] == len(mine)
        assert got["labelled_count"] == len(with_label)
        assert got["accuracy"] == right / len(with_label)
        assert np.isclose(got["error_rate"], 1 - right / len(with_label))
        confidence = np.maximum(probs[mine], 1 - probs[mine])
        assert np.isclose(got["estimated_accuracy"], confidence.mean())
    assert score["labelled_count"] == len(labelled)
    assert score["accuracy"] == float(np.mean(predicted[labelled] == truth[labelled]))
    adwin = [c for c in score["change_points"] if c["detector"] == "adwin"]
    assert len(adwin) == 1 and adwin[0]["target"] == "error"
    assert late_after - late_before == N - 200
    # the sliding windows (one tumbling window in their span) merge the same tallies
    assert sliding["performance"] == score["performance"]

    dlq = assigned_consumer(kafka_settings, dlq_topic, 1, "dlq")
    dead = [m for m in read_all(dlq, 2) if isinstance(m, Message)]
    dlq.close()
    reasons = sorted(str(dict(m.headers() or [])[REASON]) for m in dead)
    assert reasons == ["b'invalid_value'", "b'unknown_schema'"]  # empty request id; garbage
    assert all(dict(m.headers() or [])[SOURCE_TOPIC] == feedback_topic.encode() for m in dead)
    assert loop.feedback is not None and loop.feedback.dead_letter_count == 2
