"""Sliding DriftScores from the processor: the exact merge of the tumbling sketches.

The property: a sliding window's record equals the record of one sketch counted over
every event of its span, however the stream was cut into batches.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from schemas.catalog import DRIFT_SCORE
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.drift_processor import NATURAL_KEY_HEADER, DriftOutput, DriftProcessor
from stream.profiles import FileProfileSource
from stream.runtime.window_plan import WindowPlan, WindowSizes
from stream.stats import DecisionRule, ReferenceProfile, WindowSketch, score_window

SIZE = 60_000
PLAN = WindowPlan(WindowSizes(SIZE, 5 * SIZE, 2 * SIZE))
RNG = np.random.default_rng(5)
REF = RNG.normal(size=(3000, 2))
PROFILE = ReferenceProfile.build(
    REF, ["a", "b"], predicted=(REF[:, 0] > 0).astype(float), probability=RNG.random(3000), bins=8
)
N = 1_400
TIMES = np.sort(RNG.integers(0, 14 * SIZE, N))
X = RNG.normal(size=(N, 2)) + np.where(TIMES[:, None] > 8 * SIZE, 0.6, 0.0)  # drift at 8 min
PROB = RNG.random(N)
PRED = (X[:, 0] > 0).astype(float)
CODEC = SingleObjectCodec()


def _event(i: int) -> bytes:
    return CODEC.encode(
        "InferenceEvent",
        {"event_id": str(i), "request_id": str(i), "event_time": int(TIMES[i]),
         "model_name": "m", "model_version": "1", "variant": "baseline",
         "features": {"a": float(X[i, 0]), "b": float(X[i, 1])},
         "prediction": float(PRED[i]), "probabilities": {"0": 1 - PROB[i], "1": float(PROB[i])},
         "latency_ms": 1.0, "outcome": "ok", "source": "test"},
    )  # fmt: skip


EVENTS = [_event(i) for i in range(N)]


def _run(tmp: Path, cuts: list[int]) -> list[DriftOutput]:
    PROFILE.save(tmp / "m.json")
    processor = DriftProcessor(
        FileProfileSource(tmp), window_ms=SIZE, lateness_ms=5_000, plan=PLAN,
        detector_block_size=0,
    )  # fmt: skip
    out: list[DriftOutput] = []
    for a, b in itertools.pairwise([0, *cuts, N]):
        batch = decode_inference_batch(EVENTS[a:b])
        processor.process("events", 0, batch, np.arange(a, b, dtype=np.int64))
        out += processor.close_ready()
    return out


def _expected(start: int, end: int) -> dict[str, object]:
    rows = (start <= TIMES) & (end > TIMES)
    sketch = WindowSketch(PROFILE).update(
        X[rows], predicted=PRED[rows].astype(object), probability=PROB[rows]
    )
    return score_window(PROFILE, sketch, DecisionRule()).drift_score_fields()


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> list[DriftOutput]:
    return _run(tmp_path_factory.mktemp("whole"), [])


def test_sliding_records_equal_one_sketch_of_their_span(whole: list[DriftOutput]) -> None:
    sliding = [o for o in whole if o.value["window_kind"] == "sliding"]
    # Ends on the 2-minute slide, up to the last closed tumbling window (13 min).
    assert [o.value["window_end"] for o in sliding] == [e * SIZE for e in (2, 4, 6, 8, 10, 12)]
    for out in sliding:
        start, end = out.value["window_start"], out.value["window_end"]
        assert end - start == 5 * SIZE
        fields = {k: out.value[k] for k in _expected(start, end)}
        assert fields == _expected(start, end)
        assert out.natural_key == ("m", "1", "sliding", start)
        assert dict(out.headers)[NATURAL_KEY_HEADER] == f"m/1/sliding/{start}".encode()
        CODEC.encode(DRIFT_SCORE, out.value)  # a valid DriftScore
    assert [o.value["drifted"] for o in sliding] == [False, False, False, False, True, True]


def test_sliding_records_carry_the_merged_lineage_and_performance(
    whole: list[DriftOutput],
) -> None:
    tumbling = {
        o.value["window_start"]: o.value for o in whole if o.value["window_kind"] == "tumbling"
    }
    for out in (o for o in whole if o.value["window_kind"] == "sliding"):
        start, end = out.value["window_start"], out.value["window_end"]
        parts = [tumbling[s] for s in range(max(start, 0), end, SIZE)]
        assert out.value["lineage"] == [r for p in parts for r in p["lineage"]]
        assert out.value["event_count"] == sum(p["event_count"] for p in parts)
        (variant,) = out.value["performance"]
        assert variant["prediction_count"] == out.value["event_count"]
        assert out.value["estimated_accuracy"] == pytest.approx(
            sum(p["estimated_accuracy"] * p["event_count"] for p in parts)
            / out.value["event_count"]
        )
        assert out.value["change_points"] == []
        assert out.value["critical"] == (out.value["drifted"] and out.value["drift_score"] >= 0.8)
        assert out.value["expected_false_critical_per_week"] is None
        assert out.value["late_event_count"] == tumbling[end - SIZE]["late_event_count"]


def test_every_tumbling_record_is_still_there(whole: list[DriftOutput]) -> None:
    tumbling = [o for o in whole if o.value["window_kind"] == "tumbling"]
    assert [o.value["window_start"] for o in tumbling] == [w * SIZE for w in range(13)]
    assert sum(o.value["event_count"] for o in tumbling) == int((TIMES < 13 * SIZE).sum())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=hst.lists(hst.integers(1, N - 1), max_size=12))
def test_batch_cuts_do_not_change_any_record(
    cuts: list[int], whole: list[DriftOutput], tmp_path: Path
) -> None:
    got = _run(tmp_path, sorted(set(cuts)))
    by_key = {o.natural_key: _exact(o.value) for o in got}
    assert len(by_key) == len(got) == len(whole)
    assert by_key == {o.natural_key: _exact(o.value) for o in whole}
    accuracy = {o.natural_key: o.value["estimated_accuracy"] for o in got}
    assert accuracy == pytest.approx({o.natural_key: o.value["estimated_accuracy"] for o in whole})


def _exact(value: dict[str, object]) -> dict[str, object]:
    """The record without the confidence sums (floats: equal to rounding across cuts)."""
    return {k: v for k, v in value.items() if k not in ("estimated_accuracy", "performance")}
