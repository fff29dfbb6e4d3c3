"""Shadow vs served answers: paired by request id within a bounded join window, per window."""

from __future__ import annotations

from typing import Any

import pytest

from stream.shadow_compare import Answer, ShadowJoin
from tests.records_factory import inference_event

pytestmark = pytest.mark.unit

WINDOW, JOIN = 60_000, 10_000


def answer(
    rid: str, t: int, *, shadow: bool = False, predicted: float = 1.0, p1: float = 0.9,
    latency: float = 2.0, offset: int = 0, model: str = "m", **changes: Any,
) -> Answer:  # fmt: skip
    event = inference_event(
        request_id=rid, event_time=t, model_name=model, model_version="2" if shadow else "1",
        variant="shadow" if shadow else "baseline", prediction=predicted,
        probabilities={"0": 1 - p1, "1": p1}, latency_ms=latency, **changes,
    )  # fmt: skip
    found = Answer.of(event, 0, offset)
    assert found is not None
    return found


def test_pairs_agreement_shift_and_latency_of_a_window() -> None:
    join = ShadowJoin(WINDOW, JOIN)
    join.add(answer("a", 1_000, offset=0))
    join.add(answer("b", 2_000, offset=1, predicted=0.0, p1=0.2))
    join.add(answer("a", 1_500, shadow=True, p1=0.7, latency=8.0, offset=2))  # agrees
    join.add(answer("b", 2_500, shadow=True, predicted=1.0, p1=0.6, latency=4.0, offset=3))
    assert join.close_ready() == []  # the watermark has not passed end + join window
    join.add(answer("z", WINDOW + JOIN, offset=4))
    (window,) = join.close_ready()
    record = window.record(JOIN)
    assert (record["pair_count"], record["agreement_rate"]) == (2, 0.5)
    # served classes {1, 0}, shadow {1, 1}: half the mass moved
    assert record["prediction_shift"] == 0.5
    # |0.7 - 0.9| on "1" for a, |0.4 - 0.8| on "0" for b
    assert record["probability_shift"] == pytest.approx(0.3)
    assert record["shadow_latency_p50_ms"] == 6.0 and record["champion_latency_p99_ms"] == 2.0
    assert (record["champion_version"], record["shadow_version"]) == ("1", "2")
    assert (record["window_start"], record["window_end"], record["join_window_ms"]) == (
        0, WINDOW, JOIN,
    )  # fmt: skip


def test_answers_without_a_partner_within_the_join_window_are_counted_unmatched() -> None:
    join = ShadowJoin(WINDOW, JOIN)
    join.add(answer("served-only", 1_000))
    join.add(answer("shadow-only", 2_000, shadow=True))
    join.add(answer("late-shadow", 30_000))
    join.add(answer("x", 41_000))  # watermark 41 s: served-only and shadow-only expired
    join.add(answer("late-shadow", 45_000, shadow=True))  # within 10 s of its partner: pairs
    join.add(answer("y", WINDOW + JOIN))
    (window,) = join.close_ready()
    record = window.record(JOIN)
    assert record["pair_count"] == 1
    assert record["unmatched_shadow_count"] == 1
    # served-only, x (expired at 51 s < 70 s); y's window is still open
    assert record["unmatched_champion_count"] == 2


def test_failed_requests_repeats_and_answers_of_closed_windows_do_not_count() -> None:
    assert Answer.of(inference_event(outcome="server_error", prediction=None), 0, 0) is None
    join = ShadowJoin(WINDOW, JOIN)
    join.add(answer("a", 1_000))
    join.add(answer("a", 1_100))  # a replayed served answer: the first wins
    assert join.duplicates == 1
    join.add(answer("z", 200_000))
    join.close_ready()
    join.add(answer("old", 5_000))
    join.add(answer("old", 5_500, shadow=True))
    assert join.late == 1 and join.close_ready() == []


def test_memory_is_bounded_and_commits_stop_at_the_oldest_held_answer() -> None:
    join = ShadowJoin(WINDOW, JOIN, max_pending=2)
    for i in range(3):
        join.add(answer(f"r{i}", 1_000 + i, offset=10 + i))
    assert len(join.champions) == 2  # r0 was counted unmatched at once, in its window
    assert join.low_offsets() == {0: 10}  # r0 is still in the open window's state
    join.add(answer("z", WINDOW + JOIN, offset=20))
    (window,) = join.close_ready()
    assert window.unmatched_champion == 3
    assert join.low_offsets() == {0: 20}


def test_windows_are_per_model() -> None:
    join = ShadowJoin(WINDOW, JOIN)
    join.add(answer("a", 1_000, model="m1"))
    join.add(answer("a", 1_200, model="m2", shadow=True))  # same id, other model: no pair
    join.add(answer("z", WINDOW + JOIN, model="m1"))
    (window,) = join.close_ready()
    assert window.model == "m1" and window.pairs == 0 and window.unmatched_champion == 1
