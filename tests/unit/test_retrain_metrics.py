"""The retrain worker's metrics: outcomes by model, and training time of real trainings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest
import redis
from prometheus_client import REGISTRY

from retrain.handler import RetrainHandler
from retrain.job import RetrainJob, RetrainOutcome
from retrain.metrics import outcome_label
from retrain.settings import RetrainSettings
from schemas.model_registry import ModelStore
from tests.unit.test_retry_policy import _one, _request, _worker

pytestmark = pytest.mark.unit


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_handled_request_counts_under_its_outcome() -> None:
    labels = {"model": "m", "outcome": "trained"}
    before = _value("driftline_retrain_requests_total", labels)
    worker, consumer, decoder, router, _ = _worker(ValueError("unused"))
    _one(worker, consumer, decoder, router, _request(1, "good"))  # a challenger
    assert _value("driftline_retrain_requests_total", labels) == before + 1
    assert [outcome_label(s) for s in ("challenger", "rejected", "suppressed", "failed")] == [
        "trained", "rejected", "suppressed", "failed",
    ]  # fmt: skip


class FakeJob:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def run(self, request: Mapping[str, Any], run_id: str, *args: object) -> RetrainOutcome:
        if self.error is not None:
            raise self.error
        return RetrainOutcome("rejected", run_id, "3")


def test_training_time_is_observed_for_trainings_that_finished_only() -> None:
    handler = RetrainHandler(
        RetrainSettings(), cast(redis.Redis, object()), ModelStore("sqlite:///unused"),
        cast(RetrainJob, FakeJob()),
    )  # fmt: skip
    labels = {"model": "timed"}
    before = _value("driftline_retrain_training_seconds_count", labels)
    outcome = handler._train({"model_name": "timed"}, "run", None, None)  # type: ignore[arg-type]
    assert outcome.status == "rejected"
    assert _value("driftline_retrain_training_seconds_count", labels) == before + 1
    handler.job = cast(RetrainJob, FakeJob(redis.ConnectionError("away")))
    with pytest.raises(redis.ConnectionError):
        handler._train({"model_name": "timed"}, "run", None, None)  # type: ignore[arg-type]
    assert _value("driftline_retrain_training_seconds_count", labels) == before + 1
