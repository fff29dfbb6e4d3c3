"""FeedbackJoin: labels meet predictions by request id, either first, within the window."""

from __future__ import annotations

import numpy as np
import pytest

from stream.feedback_join import FeedbackJoin, Joined, Label

SOURCE = ("inference.events", 0)


def _predict(
    join: FeedbackJoin, ids: list[str], times: list[int], predicted: list[object], model: str = "m"
) -> list[Joined]:
    return join.add_predictions(
        model=model,
        version="1",
        window_start=0,
        source=SOURCE,
        request_ids=ids,
        event_time=np.array(times, dtype=np.int64),
        variant=np.array([1 if i.startswith("c") else 0 for i in ids], dtype=np.int8),
        predicted=np.array(predicted, dtype=object),
    )


def _label(request_id: str, label: float | str, t: int = 0, model: str = "m") -> Label:
    return Label(f"f-{request_id}-{label}", request_id, model, label, t)


def test_label_after_prediction_joins_and_compares_normalised_labels() -> None:
    join = FeedbackJoin(60_000)
    assert _predict(join, ["a", "b", "c1"], [10, 20, 30], [1.0, "cat", None]) == []
    a = join.add_feedback(_label("a", "1"))  # 1.0 predicted, "1" labelled: the same class
    b = join.add_feedback(_label("b", "dog"))
    c = join.add_feedback(_label("c1", 0.0))  # no prediction (failed request): wrong
    assert a is not None and a.correct and a.prediction.event_time == 10
    assert b is not None and not b.correct and b.prediction.variant == "baseline"
    assert c is not None and not c.correct and c.prediction.variant == "canary"
    assert join.take_counts().joined == {"m": 3}


def test_label_before_prediction_is_held_and_joins_when_it_comes() -> None:
    join = FeedbackJoin(60_000)
    assert join.add_feedback(_label("a", 1.0, t=500)) is None
    assert join.held_feedback == 1
    (joined,) = _predict(join, ["x", "a"], [100, 200], [0.0, 1.0])
    assert joined.correct and joined.label.request_id == "a" and joined.prediction.event_time == 200
    assert join.held_feedback == 0
    assert join.take_counts().joined == {"m": 1}


def test_duplicate_labels_count_once_first_wins() -> None:
    join = FeedbackJoin(60_000)
    join.add_feedback(_label("early", 0.0))
    assert join.add_feedback(_label("early", 1.0)) is None  # duplicate while held
    _predict(join, ["a", "early"], [1, 2], [1.0, 1.0])
    first = join.add_feedback(_label("a", 1.0))
    assert first is not None and first.correct
    assert join.add_feedback(_label("a", 0.0)) is None  # duplicate after the join
    counts = join.take_counts()
    assert counts.joined == {"m": 2} and counts.duplicate == {"m": 2}


def test_both_sides_expire_after_the_join_window_of_the_watermark() -> None:
    join = FeedbackJoin(1_000)
    _predict(join, ["old"], [0], [1.0])
    _predict(join, ["new"], [5_000], [1.0])
    join.add_feedback(_label("orphan", 1.0, t=0))
    join.expire({"m": 1_000})  # exactly at t + window: still held
    assert (join.held_predictions, join.held_feedback) == (2, 1)
    join.expire({"m": 1_001})
    assert (join.held_predictions, join.held_feedback) == (1, 0)
    assert join.add_feedback(_label("old", 1.0, t=1_001)) is None  # its prediction left
    counts = join.take_counts()
    assert counts.predictions_dropped == {("m", "expired"): 1}
    assert counts.feedback_dropped == {("m", "expired"): 1}
    new = join.add_feedback(_label("new", 1.0))
    assert new is not None and new.correct


def test_labels_of_models_never_counted_here_leave_as_not_owned() -> None:
    join = FeedbackJoin(1_000)
    join.add_feedback(_label("r", 1.0, t=0, model="elsewhere"))
    _predict(join, ["a"], [5_000], [1.0])
    join.expire({"m": 4_000})
    assert join.held_feedback == 0
    assert join.take_counts().feedback_dropped == {("elsewhere", "not_owned"): 1}


def test_memory_is_bounded_by_count_oldest_evicted_first() -> None:
    join = FeedbackJoin(10**12, max_predictions=1_000, max_feedback=50)
    for b in range(100):  # 100 batches of 100: never expire, only the bound limits them
        ids = [f"{b}-{i}" for i in range(100)]
        _predict(join, ids, [b] * 100, [1.0] * 100)
        assert join.held_predictions <= 1_000
    for i in range(500):
        join.add_feedback(_label(f"unknown-{i}", 1.0, t=i))
        assert join.held_feedback <= 50
    assert len(join._seen) == join.held_predictions == 1_000
    assert len(join._chunks) <= 10 + 64  # released chunks are compacted
    counts = join.take_counts()
    assert counts.predictions_dropped == {("m", "evicted"): 9_000}
    assert counts.feedback_dropped == {("m", "evicted"): 450}
    assert join.add_feedback(_label("0-0", 1.0)) is None  # evicted: held as a label now
    newest = join.add_feedback(_label("99-99", 1.0))
    assert newest is not None and newest.correct


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="max_predictions"):
        FeedbackJoin(1_000, max_predictions=0)


def test_predictions_of_a_revoked_partition_leave() -> None:
    join = FeedbackJoin(60_000)
    _predict(join, ["a", "b"], [1, 2], [1.0, 1.0])
    join.add_predictions(
        model="other", version="1", window_start=0, source=("inference.events", 3),
        request_ids=["c"], event_time=np.array([3], dtype=np.int64),
        variant=np.zeros(1, dtype=np.int8), predicted=np.array([0.0], dtype=object),
    )  # fmt: skip
    join.drop_source(SOURCE)
    assert join.held_predictions == 1
    assert join.take_counts().predictions_dropped == {("m", "revoked"): 2}
    assert join.add_feedback(_label("a", 1.0)) is None  # held as an early label now
    kept = join.add_feedback(_label("c", 0.0, model="other"))
    assert kept is not None and kept.correct
