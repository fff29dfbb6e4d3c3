"""Feature views: the TOML contract (durations, refs, refusals that name the problem) and
the mergeable bucket partials the processor and the backfill write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schemas.feature_store import EntityState
from schemas.feature_views import (
    DEFAULT_VIEWS_PATH,
    FeatureView,
    FeatureViewError,
    load_views,
    parse_duration,
)

HOUR = 3_600_000
VIEW = FeatureView.model_validate(
    {
        "name": "user_stats",
        "entity": "user_id",
        "window": "1d",
        "bucket": "1h",
        "features": [
            {"name": "n", "aggregate": "count"},
            {"name": "mean", "aggregate": "mean", "field": "amount"},
            {"name": "sum", "aggregate": "sum", "field": "amount"},
            {"name": "min", "aggregate": "min", "field": "amount"},
            {"name": "max", "aggregate": "max", "field": "amount"},
            {"name": "last", "aggregate": "last", "field": "amount"},
        ],
    }
)


def test_the_packaged_views_load_and_name_their_refs() -> None:
    views = load_views(DEFAULT_VIEWS_PATH)
    assert "patient_stats:prediction_count_7d" in views.refs()
    view = views.get("patient_stats")
    assert view is not None and view.window_s == 7 * 86400 and view.bucket_s == 3600
    assert view.ttl_s == 7 * 86400 + 3600  # default: window plus one bucket


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("1h", 3600), ("30m", 1800), ("90", 90), ("500ms", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


_COUNT = '[[views.features]]\nname="n"\naggregate="count"\n'
BAD_VIEWS = [
    ('[[views]]\nname="v"\nwindow="90m"\nbucket="1h"\n' + _COUNT, "whole number of buckets"),
    ('[[views]]\nname="v"\n[[views.features]]\nname="m"\naggregate="mean"\n', "needs a 'field'"),
    ('[[views]]\nname="v"\n' + _COUNT.replace("count", "median"), "features.0.aggregate"),
    ('[[views]]\nname="a:b"\n' + _COUNT, "view name"),
    ('[[views]]\nname="v"\nwindow="1y"\n' + _COUNT, "not a duration"),
    ('[[views]]\nname="v"\n' + _COUNT + _COUNT, "features named twice"),
    ('[[views]]\nname="v"\nwindow="365d"\nbucket="1m"\n' + _COUNT, "at most 1000"),
    ("[[views]\n", "feature views file"),
]


@pytest.mark.parametrize(("body", "problem"), BAD_VIEWS)
def test_bad_views_are_refused_naming_the_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "views.toml"
    path.write_text(body)
    with pytest.raises(FeatureViewError, match=problem):
        load_views(path)


def _direct(times: np.ndarray, amounts: np.ndarray, end: int) -> dict[str, float]:
    """The aggregates over events in buckets overlapping (end - 1 day, end]."""
    bucket_start = times - times % HOUR
    keep = bucket_start + HOUR > end - 24 * HOUR
    a, t = amounts[keep], times[keep]
    return {"n": float(keep.sum()), "mean": float(a.mean()), "sum": float(a.sum()),
            "min": float(a.min()), "max": float(a.max()),
            "last": float(a[np.argmax(t)])}  # fmt: skip


def test_partials_merged_in_any_grouping_equal_the_direct_aggregates() -> None:
    rng = np.random.default_rng(3)
    end = 1_764_000_000_000
    times = end - rng.integers(0, 3 * 24 * HOUR, 400)
    times[0] = end
    amounts = rng.normal(50, 20, 400).round(3)
    whole = EntityState()
    for t, a in zip(times.tolist(), amounts.tolist(), strict=True):
        whole.add(VIEW, t, {"amount": a})
    whole.expire(VIEW)
    pieces = EntityState()
    for chunk in np.array_split(rng.permutation(400), 7):  # several batches, shuffled
        delta = EntityState()
        for k in chunk.tolist():
            delta.add(VIEW, int(times[k]), {"amount": float(amounts[k])})
        pieces.merge(VIEW, delta)
    restored = EntityState.from_hash(str(pieces.event_time).encode(), pieces.buckets_json())
    want = _direct(times, amounts, end)
    for state in (whole, pieces, restored):
        got = state.values(VIEW)
        assert got == pytest.approx(want, rel=1e-12)
    assert len(pieces.buckets) <= 25  # a day of hourly buckets (plus the partial one)


def test_a_field_no_event_carried_is_null_and_count_still_counts() -> None:
    state = EntityState()
    state.add(VIEW, 1_000 * HOUR, {})
    values = state.values(VIEW)
    assert values["n"] == 1.0
    assert values["mean"] is None and values["last"] is None
