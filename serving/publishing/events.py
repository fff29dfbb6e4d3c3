"""The InferenceEvent serving publishes, in the shape of ``schemas/avro/inference_event.avsc``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.events import Outcome, Variant
from schemas.events import inference_event as build_inference_event

#: The ``source`` field of every event serving publishes.
SOURCE = "driftline-serving"

__all__ = ["SOURCE", "Outcome", "inference_event"]


def inference_event(
    *,
    request_id: str,
    model_name: str,
    model_version: str,
    latency_ms: float,
    outcome: Outcome,
    features: Mapping[str, float] | None = None,
    prediction: float | None = None,
    probabilities: Mapping[str, float] | None = None,
    variant: Variant = "baseline",
    error_type: str | None = None,
    entity_id: str | None = None,
    trace_id: str | None = None,
    event_time_ms: int | None = None,
) -> dict[str, Any]:
    """One InferenceEvent as a dict ready for the codec.

    Serving validated every feature value (finite numbers) before calling this, which is
    why the publisher may encode with ``check=False``.
    """
    return build_inference_event(
        source=SOURCE,
        request_id=request_id,
        model_name=model_name,
        model_version=model_version,
        latency_ms=latency_ms,
        outcome=outcome,
        features=features,
        prediction=prediction,
        probabilities=probabilities,
        variant=variant,
        error_type=error_type,
        entity_id=entity_id,
        trace_id=trace_id,
        event_time_ms=event_time_ms,
    )
