"""DriftProcessor without Kafka: decoded batches in, valid DriftScore records out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schemas.catalog import DRIFT_SCORE
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.drift_processor import LINEAGE_HEADER, DriftProcessor
from stream.profiles import FileProfileSource
from stream.stats import ReferenceProfile, calibrate


def _event(
    model: str, t: int, x: float, i: int, p: float | None = None, variant: str = "baseline"
) -> bytes:
    return SingleObjectCodec().encode(
        "InferenceEvent",
        {"event_id": str(i), "request_id": str(i), "event_time": t, "model_name": model,
         "model_version": "1", "variant": variant, "features": {"a": x, "b": -x},
         "prediction": 1.0 if x > 0 else 0.0, "latency_ms": 1.0, "outcome": "ok",
         "probabilities": {} if p is None else {"1": p},
         "source": "test"},
    )  # fmt: skip


def test_closed_window_becomes_a_valid_drift_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.build(rng.normal(size=(2000, 2)), ["a", "b"], bins=10)
    profile.save(tmp_path / "m.json")
    processor = DriftProcessor(FileProfileSource(tmp_path), window_ms=60_000, lateness_ms=0)
    values = [_event("m", i * 100, float(v), i) for i, v in enumerate(rng.normal(size=500) + 3)]
    values += [_event("nobody", 1_000, 0.0, 900), b"junk", _event("m", 60_000, 0.0, 901)]
    batch = decode_inference_batch(values)
    assert len(batch.errors) == 1
    processor.process("events", 2, batch, np.arange(len(values), dtype=np.int64))
    (out,) = processor.close_ready()
    assert out.key == "m" and out.natural_key == ("m", "1", "tumbling", 0)
    assert out.value["event_count"] == 500 and out.value["window_end"] == 60_000
    assert out.value["drifted"] is True and out.value["late_event_count"] == 0
    assert dict(out.headers)[LINEAGE_HEADER] == b"events:2:0-499"
    assert out.value["lineage"] == [
        {"topic": "events", "partition": 2, "first_offset": 0, "last_offset": 499}
    ]
    assert out.value["window_kind"] == "tumbling"
    assert out.value["critical"] is (out.value["drift_score"] >= 0.8)
    assert out.value["expected_false_critical_per_week"] is None  # uncalibrated profile
    assert out.value["performance"] == [
        {"variant": "baseline", "prediction_count": 500, "estimated_accuracy": None,
         "labelled_count": 0, "accuracy": None, "error_rate": None}
    ]  # fmt: skip
    assert out.value["labelled_count"] == 0 and out.value["accuracy"] is None
    targets = {(c["detector"], c["target"]) for c in out.value["change_points"]}
    assert targets == {("page_hinkley", "a"), ("page_hinkley", "b")}
    SingleObjectCodec().encode(DRIFT_SCORE, out.value)  # validates against the schema
    checkpoint = processor.checkpoint("events", 2)
    assert checkpoint is not None
    assert (checkpoint.commit_offset, checkpoint.next_offset) == (
        502,
        503,
    )  # the open window starts at the last event


def test_single_profile_file_serves_every_model(tmp_path: Path) -> None:
    profile = ReferenceProfile.build(np.arange(100.0).reshape(50, 2), ["a", "b"], bins=5)
    path = profile.save(tmp_path / "p.json")
    source = FileProfileSource(path)
    got = source.get("anything", "7")
    assert got is not None and got.reference_id == profile.reference_id
    assert FileProfileSource(tmp_path / "missing").get("m", "1") is None


def test_estimated_accuracy_is_mean_confidence_per_variant(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(500, 2))
    profile = ReferenceProfile.build(data, ["a", "b"], bins=5)
    calibration = calibrate(profile, data, ["a", "b"], window_size=300, draws=20)
    profile = profile.model_copy(update={"calibration": calibration.model_dump()})
    profile.save(tmp_path / "m.json")
    processor = DriftProcessor(FileProfileSource(tmp_path), window_ms=60_000, lateness_ms=0)
    probs = rng.uniform(size=300)
    variants = ["baseline" if i % 3 else "canary" for i in range(300)]
    values = [
        _event("m", i * 100, 0.0, i, float(p), v)
        for i, (p, v) in enumerate(zip(probs, variants, strict=True))
    ]
    values.append(_event("m", 60_000, 0.0, 999, 0.5))
    batch = decode_inference_batch(values)
    processor.process("events", 0, batch, np.arange(len(values), dtype=np.int64))
    (out,) = processor.close_ready()
    confidence = np.maximum(probs, 1 - probs)
    canary = np.array([v == "canary" for v in variants])
    by_variant = {p["variant"]: p for p in out.value["performance"]}
    assert list(by_variant) == ["baseline", "canary"]
    assert by_variant["canary"]["prediction_count"] == int(canary.sum())
    assert np.isclose(by_variant["canary"]["estimated_accuracy"], confidence[canary].mean())
    assert np.isclose(by_variant["baseline"]["estimated_accuracy"], confidence[~canary].mean())
    assert np.isclose(out.value["estimated_accuracy"], confidence.mean())
    expected = calibration.expected_false_alerts_per_week(300.0, level="critical")
    assert out.value["expected_false_critical_per_week"] == expected > 0
    SingleObjectCodec().encode(DRIFT_SCORE, out.value)
