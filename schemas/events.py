"""Builders of the records every producer sends, so their shape is written once.

The SDK (outside services) and serving both publish InferenceEvents; building the dict in
one place keeps them identical field for field, which is what lets Driftline monitor an
outside model exactly like its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

Variant = Literal["baseline", "canary", "shadow"]
Outcome = Literal["ok", "client_error", "server_error"]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of every Driftline event time."""
    return time.time_ns() // 1_000_000


def inference_event(
    *,
    source: str,
    model_name: str,
    model_version: str,
    latency_ms: float,
    features: Mapping[str, float] | None = None,
    prediction: float | str | None = None,
    probabilities: Mapping[str, float] | None = None,
    categorical_features: Mapping[str, str] | None = None,
    variant: Variant = "baseline",
    outcome: Outcome = "ok",
    error_type: str | None = None,
    request_id: str | None = None,
    event_id: str | None = None,
    event_time_ms: int | None = None,
    entity_id: str | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """One InferenceEvent as a dict for the codec (``schemas/avro/inference_event.avsc``).

    Ids default to fresh UUIDs and the event time to now. Nothing is validated here: the
    codec validates on encode (or the caller has, and encodes with ``check=False``).
    """
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "request_id": request_id or str(uuid.uuid4()),
        "event_time": now_ms() if event_time_ms is None else event_time_ms,
        "model_name": model_name,
        "model_version": model_version,
        "variant": variant,
        "features": dict(features or {}),
        "categorical_features": dict(categorical_features or {}),
        "prediction": prediction,
        "probabilities": dict(probabilities or {}),
        "latency_ms": latency_ms,
        "outcome": outcome,
        "error_type": error_type,
        "entity_id": entity_id,
        "trace_id": trace_id,
        "source": source,
    }
