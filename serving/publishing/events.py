"""The InferenceEvent serving publishes, in the shape of ``schemas/avro/inference_event.avsc``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from schemas.sdk import now_ms

#: The ``source`` field of every event serving publishes.
SOURCE = "driftline-serving"

Outcome = Literal["ok", "client_error", "server_error"]


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
    variant: str = "baseline",
    error_type: str | None = None,
    entity_id: str | None = None,
    trace_id: str | None = None,
    event_time_ms: int | None = None,
) -> dict[str, Any]:
    """One InferenceEvent as a dict ready for the codec.

    Serving validated every feature value (finite numbers) before calling this, which is
    why the publisher may encode with ``check=False``.
    """
    return {
        "event_id": str(uuid.uuid4()),
        "request_id": request_id,
        "event_time": now_ms() if event_time_ms is None else event_time_ms,
        "model_name": model_name,
        "model_version": model_version,
        "variant": variant,
        "features": dict(features or {}),
        "categorical_features": {},
        "prediction": prediction,
        "probabilities": dict(probabilities or {}),
        "latency_ms": latency_ms,
        "outcome": outcome,
        "error_type": error_type,
        "entity_id": entity_id,
        "trace_id": trace_id,
        "source": SOURCE,
    }
