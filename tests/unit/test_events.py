"""One builder for InferenceEvents: the SDK's and serving's records have the same shape."""

from __future__ import annotations

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import make_codec
from schemas.events import inference_event
from serving.publishing.events import SOURCE
from serving.publishing.events import inference_event as serving_event


def test_defaults_fill_ids_and_time_and_the_record_encodes() -> None:
    event = inference_event(
        source="svc", model_name="m", model_version="3", latency_ms=1.5, features={"a": 1.0}
    )
    assert event["event_id"] and event["request_id"] and event["event_time"] > 0
    codec = make_codec()
    assert codec.decode(codec.encode(INFERENCE_EVENT, event)).value == event


def test_serving_events_carry_every_schema_field_with_serving_as_source() -> None:
    event = serving_event(
        request_id="r1", model_name="m", model_version="1", latency_ms=2.0, outcome="ok"
    )
    reference = inference_event(source=SOURCE, model_name="m", model_version="1", latency_ms=2.0)
    assert event.keys() == reference.keys()
    assert event["source"] == SOURCE == "driftline-serving"
    assert event["request_id"] == "r1"
