"""Window sketches merge exactly: any split of the data gives the same window result."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from stream.stats import ReferenceProfile, SketchMismatchError, WindowSketch, score_window
from stream.stats.exceptions import BatchShapeError

RNG = np.random.default_rng(7)
REF = RNG.normal(size=(3000, 4))
REF_CAT = RNG.choice(["a", "b", "c"], size=(3000, 1)).astype(object)
PROFILE = ReferenceProfile.build(
    np.hstack([REF, REF_CAT]).astype(object),
    ["w", "x", "y", "z", "colour"],
    categorical_columns=["colour"],
    predicted=RNG.integers(0, 2, 3000),
    probability=RNG.random(3000),
    bins=12,
)
DATA = RNG.normal(size=(600, 4)) + np.array([0, 0.5, 0, 0])
DATA[RNG.random(DATA.shape) < 0.05] = np.nan
CAT = np.array(["a", "b", "d", None], dtype=object)[RNG.integers(0, 4, size=(600, 1))]
PRED = RNG.integers(0, 3, 600)
PROB = RNG.random(600)


def _sketch(rows: slice) -> WindowSketch:
    return WindowSketch(PROFILE).update(
        DATA[rows], categorical=CAT[rows], predicted=PRED[rows], probability=PROB[rows]
    )


@settings(max_examples=60, deadline=None)
@given(
    cuts=hst.lists(hst.integers(0, 600), max_size=8),
    order=hst.randoms(use_true_random=False),
)
def test_any_split_merged_in_any_order_equals_one_pass(cuts: list[int], order: object) -> None:
    bounds = [0, *sorted(cuts), 600]
    parts = [_sketch(slice(a, b)) for a, b in itertools.pairwise(bounds)]
    order.shuffle(parts)  # type: ignore[attr-defined]
    # Merge as a tree as well as a chain: associativity.
    halves = [WindowSketch.merged(PROFILE, parts[::2]), WindowSketch.merged(PROFILE, parts[1::2])]
    merged = WindowSketch.merged(PROFILE, halves)
    whole = _sketch(slice(0, 600))

    assert np.array_equal(merged.numeric.counts, whole.numeric.counts)
    assert np.array_equal(merged.numeric.missing, whole.numeric.missing)
    assert np.array_equal(merged.numeric.min, whole.numeric.min)
    assert np.array_equal(merged.numeric.max, whole.numeric.max)
    assert np.allclose(merged.numeric.mean, whole.numeric.mean, rtol=1e-12, atol=1e-14)
    assert np.allclose(merged.numeric.m2, whole.numeric.m2, rtol=1e-10)
    for a, b in zip(merged.categorical.counts, whole.categorical.counts, strict=True):
        assert np.array_equal(a, b)
    assert merged.event_count == whole.event_count == 600
    # The window result (everything computed from counts) is identical, bit for bit.
    assert score_window(PROFILE, merged) == score_window(PROFILE, whole)


def test_moments_match_numpy() -> None:
    whole = _sketch(slice(0, 600))
    moments = whole.numeric.moments()
    for j in range(4):
        column = DATA[:, j][~np.isnan(DATA[:, j])]
        assert moments[j]["count"] == column.size
        assert moments[j]["mean"] == pytest.approx(column.mean())
        assert moments[j]["variance"] == pytest.approx(column.var())
        assert moments[j]["min"] == column.min()


def test_unseen_categories_and_missing_values_are_counted_not_dropped() -> None:
    whole = _sketch(slice(0, 600))
    counts = whole.categorical.counts[0]
    assert counts[-1] == int((CAT[:, 0] == "d").sum())  # unseen label slot
    assert whole.categorical.missing[0] == sum(v is None for v in CAT[:, 0])
    assert whole.numeric.missing.sum() == int(np.isnan(DATA).sum())


def test_state_round_trips_through_json() -> None:
    whole = _sketch(slice(0, 600))
    state = json.loads(json.dumps(whole.state()))
    again = WindowSketch.from_state(PROFILE, state)
    assert score_window(PROFILE, again) == score_window(PROFILE, whole)


def test_merging_sketches_of_different_references_is_refused() -> None:
    other = ReferenceProfile.build(RNG.normal(size=(100, 1)), ["w"])
    with pytest.raises(SketchMismatchError):
        _sketch(slice(0, 10)).merge(WindowSketch(other))


def test_a_batch_of_the_wrong_width_names_the_shape() -> None:
    with pytest.raises(BatchShapeError, match=r"expected \(n, 4\)"):
        WindowSketch(PROFILE).update(np.zeros((3, 5)), categorical=CAT[:3])
