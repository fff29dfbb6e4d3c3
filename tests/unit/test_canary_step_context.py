"""The canary step context survives its text form exactly (retrain/canary_step_context)."""

from __future__ import annotations

from retrain.canary import SloSummary
from retrain.canary_accuracy import VariantAccuracy
from retrain.canary_step_context import StepContext, decode_step_context


def test_the_previous_steps_evidence_round_trips_exactly() -> None:
    """The restarted controller must judge on the very numbers the running one had."""
    context = StepContext(
        version="7", share=1.0, since_ms=1_800_000_000_123,
        previous_baseline=SloSummary(57, 0.1 + 0.2, 18.333333333333332),
        previous_baseline_accuracy=[
            VariantAccuracy(100, 0.9123456789012345, 40, 0.875),
            VariantAccuracy(3, None, 0, None),
        ],
    )  # fmt: skip
    assert decode_step_context("m", context.encode()) == context


def test_an_absent_or_unreadable_context_is_none() -> None:
    assert decode_step_context("m", None) is None
    assert decode_step_context("m", "{not json") is None
    assert decode_step_context("m", '{"version": "2", "share": "all"}') is None
