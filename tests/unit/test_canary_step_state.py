"""Which window pairs a canary step is judged on (retrain/canary_controller.StepState)."""

from __future__ import annotations

from retrain.canary import SloSummary
from retrain.canary_controller import StepState

HEALTHY = SloSummary(100, 0.0, 20.0)
BASELINE = SloSummary(50, 0.01, 18.0)


def test_below_full_share_a_canary_window_needs_the_baseline_of_the_same_window() -> None:
    step = StepState("2", 0.5, None, previous_baseline=BASELINE)
    step.canary = {0: HEALTHY, 60_000: HEALTHY}
    step.baseline = {60_000: BASELINE}
    assert step.pairs() == [(60_000, HEALTHY, BASELINE)]


def test_at_full_share_the_canary_is_judged_against_the_previous_steps_baseline() -> None:
    """At 100 % the baseline serves nothing: no same-window pair ever exists, and without
    this the last step could never pass (the canary was never promoted)."""
    step = StepState("2", 1.0, None, previous_baseline=BASELINE)
    step.canary = {0: HEALTHY, 60_000: HEALTHY}
    assert step.pairs() == [(0, HEALTHY, BASELINE), (60_000, HEALTHY, BASELINE)]


def test_a_baseline_window_seen_at_full_share_is_newer_evidence_than_the_previous_step() -> None:
    late = SloSummary(30, 0.0, 25.0)
    step = StepState("2", 1.0, None, previous_baseline=BASELINE)
    step.canary = {0: HEALTHY, 60_000: HEALTHY}
    step.baseline = {0: late}
    assert step.pairs() == [(0, HEALTHY, late), (60_000, HEALTHY, late)]


def test_the_newest_baseline_window_is_carried_to_the_next_step() -> None:
    step = StepState("2", 0.5, None)
    assert step.newest_baseline() is None
    step.baseline = {60_000: BASELINE, 0: HEALTHY}
    assert step.newest_baseline() == BASELINE
