"""DriftProcessor without Kafka: decoded batches in, valid DriftScore records out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schemas.catalog import DRIFT_SCORE
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.drift_processor import LINEAGE_HEADER, DriftProcessor
from stream.profiles import FileProfileSource
from stream.stats import ReferenceProfile


def _event(model: str, t: int, x: float, i: int) -> bytes:
    return SingleObjectCodec().encode(
        "InferenceEvent",
        {"event_id": str(i), "request_id": str(i), "event_time": t, "model_name": model,
         "model_version": "1", "variant": "baseline", "features": {"a": x, "b": -x},
         "prediction": 1.0 if x > 0 else 0.0, "latency_ms": 1.0, "outcome": "ok",
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
    assert out.key == "m" and out.natural_key == ("m", "1", 0)
    assert out.value["event_count"] == 500 and out.value["window_end"] == 60_000
    assert out.value["drifted"] is True and out.value["late_event_count"] == 0
    assert dict(out.headers)[LINEAGE_HEADER] == b"events:2:0-499"
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
