"""The SDK refuses bad events before sending, naming the field."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.exceptions import RecordValidationError
from schemas.sdk import DriftlineProducer
from schemas.settings import KafkaSettings


@pytest.fixture
def producer() -> Iterator[DriftlineProducer]:
    # No broker is needed: validation happens before anything is queued.
    sdk = DriftlineProducer(source="unit", settings=KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    yield sdk
    sdk.close(timeout_s=0)


GOOD: dict[str, Any] = {
    "model_name": "m",
    "model_version": "1",
    "features": {"age": 31.0},
    "latency_ms": 2.0,
}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"features": {"age": math.nan}}, "features['age']", "finite"),
        ({"features": {"age": "31"}}, "features['age']", "expected a number"),
        ({"latency_ms": math.inf}, "latency_ms", "finite"),
        ({"prediction": -math.inf}, "prediction", "finite"),
        ({"probabilities": {"yes": math.nan}}, "probabilities['yes']", "finite"),
        ({"variant": "blue"}, "variant", "not one of"),
        ({"outcome": "fine"}, "outcome", "not one of"),
        ({"model_name": None}, "model_name", "expected a string"),
        ({"categorical_features": {"country": 49}}, "categorical_features['country']", "string"),
        ({"event_time_ms": 2**64}, "event_time", "out of range"),
    ],
)
def test_bad_inference_event_names_the_field(
    producer: DriftlineProducer, change: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(RecordValidationError) as err:
        producer.send_inference(**{**GOOD, **change})
    assert err.value.record_type == "InferenceEvent"
    assert err.value.field == field
    assert problem in err.value.problem
    assert producer.flush(0) == 0  # nothing was queued


def test_bad_feedback_names_the_field(producer: DriftlineProducer) -> None:
    with pytest.raises(RecordValidationError) as err:
        producer.send_feedback(request_id="r", model_name="m", label=math.nan)
    assert err.value.field == "label"


def test_only_event_types_are_sent(producer: DriftlineProducer) -> None:
    with pytest.raises(ValueError, match="not DriftScore"):
        producer.send("DriftScore", {}, key="m")
