"""Online change-point detectors: Page-Hinkley on standardised block means."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY

from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.detectors import (
    FEATURE_DETECTOR,
    PREDICTION_DETECTOR,
    PREDICTION_FEATURE,
    DetectorState,
    OnlineDetectors,
)
from stream.drift_processor import DriftProcessor
from stream.profiles import FileProfileSource
from stream.stats import ReferenceProfile

NAMES = ["a", "b", "c"]
SHIFT_AT = 100_000  # events before the shift (one event per ms of event time)


def _profile(rng: np.random.Generator) -> ReferenceProfile:
    x = rng.normal(size=(5000, 3))
    p = rng.beta(2, 5, size=5000)
    return ReferenceProfile.build(x, NAMES, probability=p, bins=10)


def _stream(
    rng: np.random.Generator, n: int, *, feature_shift: float, prob_shift: float
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 3))
    x[:, 1] += feature_shift
    p = np.clip(rng.beta(2, 5, size=n) + prob_shift, 0.0, 1.0)
    return x, p


def _state(report_states: tuple[DetectorState, ...], feature: str) -> DetectorState:
    return next(s for s in report_states if s.feature == feature)


def test_page_hinkley_trips_after_a_prediction_mean_shift_and_not_before() -> None:
    rng = np.random.default_rng(7)
    detectors = OnlineDetectors(_profile(rng), block_size=500)
    x, p = _stream(rng, SHIFT_AT, feature_shift=0.0, prob_shift=0.0)
    times = np.arange(SHIFT_AT, dtype=np.int64)
    detectors.update(x, times, p)
    before = detectors.take("m", "1", 0, SHIFT_AT + 1)
    assert not before.drift_detected and before.change_points == 0
    x, p = _stream(rng, 50_000, feature_shift=0.0, prob_shift=0.05)
    detectors.update(x, times[:50_000] + SHIFT_AT, p)
    after = detectors.take("m", "1", SHIFT_AT, SHIFT_AT + 50_000)
    assert after.change_points == 1
    prediction = _state(after.states, PREDICTION_FEATURE)
    assert prediction.detector == PREDICTION_DETECTOR and prediction.drift_detected
    assert prediction.last_change_ms is not None and prediction.last_change_ms >= SHIFT_AT
    assert [s.feature for s in after.flagged()] == [PREDICTION_FEATURE]  # features unmoved
    again = detectors.take("m", "1", SHIFT_AT + 50_000, SHIFT_AT + 60_000)
    assert again.change_points == 0  # counts restart at each close; the time is kept
    assert _state(again.states, PREDICTION_FEATURE).last_change_ms == prediction.last_change_ms


def test_feature_detector_flags_only_the_shifted_feature() -> None:
    rng = np.random.default_rng(11)
    detectors = OnlineDetectors(_profile(rng), block_size=500)
    x, p = _stream(rng, 60_000, feature_shift=0.0, prob_shift=0.0)
    detectors.update(x, np.arange(60_000, dtype=np.int64), p)
    assert detectors.take("m", "1", 0, 60_000).change_points == 0
    x, p = _stream(rng, 30_000, feature_shift=0.2, prob_shift=0.0)
    detectors.update(x, np.arange(60_000, 90_000, dtype=np.int64), p)
    report = detectors.take("m", "1", 60_000, 90_000)
    assert [(s.detector, s.feature) for s in report.flagged()] == [(FEATURE_DETECTOR, "b")]


def test_blocks_do_not_depend_on_batch_boundaries() -> None:
    rng = np.random.default_rng(3)
    profile = _profile(rng)
    x, p = _stream(rng, 40_000, feature_shift=0.0, prob_shift=0.0)
    x2, p2 = _stream(rng, 40_000, feature_shift=0.3, prob_shift=0.1)
    x, p = np.vstack([x, x2]), np.concatenate([p, p2])
    times = np.arange(len(p), dtype=np.int64)
    whole = OnlineDetectors(profile, block_size=300)
    whole.update(x, times, p)
    pieces = OnlineDetectors(profile, block_size=300)
    cuts = np.sort(rng.choice(np.arange(1, len(p)), size=57, replace=False))
    for rows in np.split(np.arange(len(p)), cuts):
        pieces.update(x[rows], times[rows], p[rows])
    first, second = whole.take("m", "1", 0, 80_000), pieces.take("m", "1", 0, 80_000)
    assert first.drift_detected and first == second


def test_missing_values_and_no_probability_are_skipped() -> None:
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.build(rng.normal(size=(1000, 2)), ["a", "b"], bins=5)
    detectors = OnlineDetectors(profile, block_size=10)
    assert detectors.names == ["a", "b"]  # no probability in the profile: no prediction PH
    x = rng.normal(size=(1000, 2))
    x[:, 1] = np.nan
    detectors.update(x, np.arange(1000, dtype=np.int64))
    assert [t.updates for t in detectors.tracked] == [100, 0]


def _event(t: int, x: float, i: int) -> bytes:
    return SingleObjectCodec().encode(
        "InferenceEvent",
        {"event_id": str(i), "request_id": str(i), "event_time": t, "model_name": "m",
         "model_version": "1", "variant": "baseline", "features": {"a": x, "b": 0.0},
         "prediction": 1.0, "latency_ms": 1.0, "outcome": "ok", "source": "test"},
    )  # fmt: skip


def test_processor_reports_change_points_per_window_and_counts_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.build(rng.normal(size=(2000, 2)), ["a", "b"], bins=10)
    profile.save(tmp_path / "m.json")
    processor = DriftProcessor(
        FileProfileSource(tmp_path), window_ms=60_000, lateness_ms=0, detector_block_size=20
    )
    shift = np.r_[np.zeros(6000), np.full(6000, 1.0)]  # second window: "a" moves by 1 sd
    values = [_event(i * 10, float(v), i) for i, v in enumerate(rng.normal(size=12_000) + shift)]
    values.append(_event(130_000, 0.0, 99_999))
    labels = {"model": "m", "detector": FEATURE_DETECTOR, "feature": "a"}
    counted = REGISTRY.get_sample_value("driftline_drift_change_points_total", labels) or 0.0
    batch = decode_inference_batch(values)
    processor.process("events", 0, batch, np.arange(len(values), dtype=np.int64))
    first, second = processor.close_ready()
    assert first.change_points is not None and second.change_points is not None
    assert not first.change_points.drift_detected
    flagged = second.change_points.flagged()
    assert [s.feature for s in flagged] == ["a"]
    assert flagged[0].last_change_ms is not None and flagged[0].last_change_ms >= 60_000
    after = REGISTRY.get_sample_value("driftline_drift_change_points_total", labels)
    assert after == counted + flagged[0].change_points
