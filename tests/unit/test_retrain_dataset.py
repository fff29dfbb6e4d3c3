"""The labelled-traffic join and the training set: pure functions of the records read."""

from __future__ import annotations

from typing import Any

import numpy as np

from retrain.dataset import REFERENCE, assemble, in_recent_holdout
from retrain.lineage import OffsetRange, TrainingSetLineage
from retrain.traffic import RawRecord, join_labelled
from retrain.training import calibration_error
from schemas.breast_cancer import check_parameters, feature_names, load_split
from schemas.catalog import FEEDBACK_EVENT, INFERENCE_EVENT
from schemas.codec import SingleObjectCodec
from schemas.events import inference_event
from schemas.retrain_requests import request_parameters, retrain_request

CODEC = SingleObjectCodec()
FEATURES = feature_names()
ROW = dict(zip(FEATURES, load_split().x_validation[0].tolist(), strict=True))


def _inference(request_id: str, t: int = 1000, **overrides: Any) -> bytes:
    event = inference_event(
        source="t", model_name="m", model_version="1", latency_ms=1.0, features=ROW,
        request_id=request_id, event_time_ms=t,
    )  # fmt: skip
    return CODEC.encode(INFERENCE_EVENT, event | overrides)


def _feedback(request_id: str, label: float | str, model: str = "m") -> bytes:
    return CODEC.encode(FEEDBACK_EVENT, {
        "feedback_id": f"f-{request_id}-{label}", "request_id": request_id, "model_name": model,
        "model_version": None, "label": label, "event_time": 2000, "source": "t",
    })  # fmt: skip


def _join(inference: list[RawRecord], feedback: list[RawRecord], max_rows: int = 100) -> Any:
    return join_labelled(
        inference, feedback, CODEC, model_name="m", features=FEATURES,
        window_start_ms=500, window_end_ms=5000, max_rows=max_rows,
    )  # fmt: skip


def test_join_keeps_only_usable_labelled_predictions_of_the_model() -> None:
    missing = {k: v for k, v in ROW.items() if k != "mean area"}
    inference = [
        (0, 0, _inference("ok")),
        (0, 1, _inference("shadow", variant="shadow")),
        (0, 2, _inference("other", model_name="other")),
        (0, 3, _inference("failed", outcome="server_error")),
        (0, 4, _inference("late", t=9000)),
        (0, 5, _inference("early", t=100)),
        (0, 6, _inference("no-label")),
        (0, 7, _inference("missing", features=missing)),
        (0, 8, _inference("bad-label")),
        (1, 0, b"not avro"),
        (0, 9, _inference("ok", t=1200)),  # same request again: the first counts
    ]
    ids = ["ok", "shadow", "other", "failed", "late", "early", "missing"]
    feedback = [(p, i, _feedback(r, 1.0)) for i, r in enumerate(ids) for p in (0,)]
    feedback += [(2, 0, _feedback("bad-label", 0.5)), (2, 1, _feedback("ok", "0"))]
    rows = _join(inference, feedback)
    assert rows.request_ids == ("ok",)
    assert rows.y.tolist() == [0]  # the last label per request wins ("0" as a string)
    assert rows.x.shape == (1, 30) and rows.skipped_undecodable == 1


def test_row_cap_keeps_the_newest_and_order_never_depends_on_reading() -> None:
    inference = [(i % 3, i, _inference(f"r{i:02d}", t=1000 + i)) for i in range(10)]
    feedback = [(0, i, _feedback(f"r{i:02d}", float(i % 2))) for i in range(10)]
    rows = _join(inference, feedback, max_rows=4)
    assert rows.request_ids == ("r06", "r07", "r08", "r09")
    shuffled = _join(list(reversed(inference)), feedback, max_rows=4)
    assert shuffled.request_ids == rows.request_ids and np.array_equal(shuffled.x, rows.x)


def test_training_set_is_reference_plus_recent_with_a_hashed_holdout() -> None:
    lineage = TrainingSetLineage(
        model_name="m", reference=REFERENCE, window_start_ms=500, window_end_ms=5000,
        inference=[OffsetRange(topic="i", partition=0, start=0, end=40)],
        max_recent_rows=100, recent_holdout_fraction=0.25,
    )  # fmt: skip
    inference = [(0, i, _inference(f"r{i}", t=1000 + i)) for i in range(40)]
    feedback = [(0, i, _feedback(f"r{i}", 1.0)) for i in range(40)]
    first = assemble(lineage, inference, feedback, CODEC)
    again = assemble(lineage, list(reversed(inference)), feedback, CODEC)
    split = load_split()
    held = [f"r{i}" for i in range(40) if in_recent_holdout(f"r{i}", 0.25)]
    assert 0 < len(held) < 40 and first.recent_holdout_ids == tuple(sorted(held))
    assert len(first.y_train) == len(split.y_train) + 40 - len(held)
    assert np.array_equal(first.x_holdout, split.x_validation)
    assert first.fingerprint() == again.fingerprint()
    assert assemble(lineage, inference[:39], feedback, CODEC).fingerprint() != first.fingerprint()
    assert "i[0]:0-40" in lineage.params()["lineage.inference_ranges"]


def test_parameters_are_checked_up_front_and_travel_in_the_request() -> None:
    assert check_parameters({"C": 0.5, "max_iter": 200, "fit_intercept": False}) == {}
    problems = check_parameters({"C": 0, "max_iter": 1.5, "gamma": 1, "tol": True})
    assert set(problems) == {"C", "max_iter", "gamma", "tol"}
    assert problems["gamma"].startswith("unknown")
    request = retrain_request("m", "manual", "t", parameters={"C": 0.5, "fit_intercept": False})
    assert request_parameters(request) == {"C": 0.5, "fit_intercept": False}
    assert request["urgency"] == "normal"
    assert retrain_request("m", "manual", "t", urgent=True)["urgency"] == "high"


def test_calibration_error_is_zero_when_calibrated_and_the_gap_otherwise() -> None:
    y = np.array([0, 1] * 50, dtype=np.int64)
    assert calibration_error(y, np.full(100, 0.5)) == 0.0
    assert abs(calibration_error(y, np.full(100, 0.95)) - 0.45) < 1e-12
