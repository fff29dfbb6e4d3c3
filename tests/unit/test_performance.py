"""Window performance tallies: exact and associative, whatever the batch/partition cuts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from schemas.inference_batch import VARIANTS
from stream.performance import (
    CONFIDENCE_SCALE,
    VariantTally,
    WindowPerformance,
    confidence,
    fixed_point_sum,
)

RNG = np.random.default_rng(3)
N = 400
VARIANT = RNG.integers(0, len(VARIANTS), N).astype(np.int8)
# Probabilities with many significant bits: float sums of these differ with the order.
CONFIDENCE = confidence(RNG.random((N, 1)))
CONFIDENCE[RNG.random(N) < 0.1] = np.nan


def _tally(cuts: list[int]) -> WindowPerformance:
    """One partial per slice between ``cuts``, merged in a shuffled order."""
    bounds = [0, *sorted(cuts), N]
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        part = WindowPerformance()
        part.add_predictions(VARIANT[lo:hi], CONFIDENCE[lo:hi])
        parts.append(part)
    RNG.shuffle(parts)
    total = WindowPerformance()
    for part in parts:
        total.merge(part)
    return total


def test_float_sums_would_depend_on_the_cut() -> None:
    # The reason for the fixed point: the plain float sum of the same values is not
    # cut-independent (if this ever fails, the data no longer shows the problem).
    values = CONFIDENCE[~np.isnan(CONFIDENCE)]
    whole = float(values.sum())
    cut_sums = {
        sum(float(values[i : i + size].sum()) for i in range(0, values.size, size))
        for size in range(1, 40)
    }
    assert cut_sums - {whole}


@settings(max_examples=80, deadline=None)
@given(cuts=hst.lists(hst.integers(0, N), max_size=12))
def test_any_cut_gives_bit_identical_drift_score_fields(cuts: list[int]) -> None:
    whole = WindowPerformance()
    whole.add_predictions(VARIANT, CONFIDENCE)
    assert _tally(cuts).drift_score_fields() == whole.drift_score_fields()
    assert _tally(cuts).variants == whole.variants


def test_estimated_accuracy_is_the_mean_confidence() -> None:
    tally = WindowPerformance()
    tally.add_predictions(VARIANT, CONFIDENCE)
    fields = tally.drift_score_fields()
    assert fields["estimated_accuracy"] == pytest.approx(np.nanmean(CONFIDENCE), abs=1e-9)
    for entry in fields["performance"]:
        mine = np.equal(VARIANT, VARIANTS.index(entry["variant"]))
        assert entry["estimated_accuracy"] == pytest.approx(np.nanmean(CONFIDENCE[mine]), abs=1e-9)
        assert entry["prediction_count"] == int(mine.sum())


def test_the_sum_is_fixed_point_rounded_per_value() -> None:
    values = np.array([0.5, 1.0, 0.0, 1 / 3])
    assert fixed_point_sum(values) == (
        CONFIDENCE_SCALE // 2 + CONFIDENCE_SCALE + round(CONFIDENCE_SCALE / 3)
    )
    tally = VariantTally(confidence_sum=fixed_point_sum(values), confidence_count=4)
    assert tally.estimated_accuracy == pytest.approx((1.5 + 1 / 3) / 4, abs=1e-9)


def test_out_of_range_confidence_is_clipped_not_overflowed() -> None:
    assert fixed_point_sum(np.array([1e300, -5.0, 0.25])) == CONFIDENCE_SCALE + (
        CONFIDENCE_SCALE // 4
    )


def test_no_probabilities_means_no_estimate() -> None:
    tally = WindowPerformance()
    tally.add_predictions(VARIANT, None)
    assert tally.drift_score_fields()["estimated_accuracy"] is None
    assert isinstance(tally.tally(VARIANTS[0]).confidence_sum, int)
