"""RetrainRequests and their MLflow runs: the contract between requesters and the worker.

Requesters (``POST /models/train`` in serving, ``driftline retrain``, the alerting path)
build a request here and publish it to ``retrain.requests`` keyed by model name; the
retrain worker consumes it. A manual request from the API carries the MLflow run the API
opened (``mlflow_run_id``): the worker trains into that run, so the caller can follow it
from the moment it gets the id. The run's ``driftline.status`` tag says where it is.

Fields the Avro record has no slot for travel in ``evidence.details``: ``reason``,
``dataset`` and each hyper-parameter as ``parameter.<name>`` (JSON value).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final, Literal

from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import Codec
from schemas.delivery import produce_and_wait
from schemas.events import now_ms
from schemas.model_registry import ModelStore
from schemas.settings import KafkaSettings
from schemas.topics import RETRAIN_REQUESTS

Trigger = Literal["drift", "slo", "manual", "schedule"]

#: Run tags both sides read and write.
TAG_STATUS: Final = "driftline.status"
TAG_TRIGGER: Final = "driftline.trigger"
TAG_MODEL: Final = "driftline.model_name"
TAG_REQUEST: Final = "driftline.request_id"
TAG_REASON: Final = "driftline.reason"
TAG_URGENT: Final = "driftline.urgent"
TAG_OUTCOME_DETAIL: Final = "driftline.outcome_detail"
TAG_VERSION: Final = "driftline.model_version"

#: ``driftline.status`` values: queued (API opened the run), training, then one of
#: challenger (passed the gate, canary), rejected (failed the gate), suppressed
#: (cooldown), failed (an error; see driftline.outcome_detail).
RunStatus = Literal["queued", "training", "challenger", "rejected", "suppressed", "failed"]

PARAMETER_PREFIX: Final = "parameter."


def retrain_request(
    model_name: str,
    trigger: Trigger,
    requested_by: str,
    *,
    idempotency_key: str | None = None,
    urgent: bool = False,
    reason: str | None = None,
    mlflow_run_id: str | None = None,
    model_version: str | None = None,
    scores: Mapping[str, float] | None = None,
    details: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    window_start: int | None = None,
    window_end: int | None = None,
) -> dict[str, Any]:
    """One RetrainRequest as a dict for the codec (``schemas/avro/retrain_request.avsc``)."""
    extra = dict(details or {})
    if reason:
        extra["reason"] = reason
    if dataset:
        extra["dataset"] = dataset
    for name, value in (parameters or {}).items():
        extra[PARAMETER_PREFIX + name] = json.dumps(value)
    return {
        "idempotency_key": idempotency_key or str(uuid.uuid4()),
        "model_name": model_name,
        "model_version": model_version,
        "trigger": trigger,
        "evidence": {
            "window_start": window_start,
            "window_end": window_end,
            "scores": dict(scores or {}),
            "details": extra,
        },
        "urgency": "high" if urgent else "normal",
        "requested_by": requested_by,
        "requested_at": now_ms(),
        "mlflow_run_id": mlflow_run_id,
    }


def request_parameters(request: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters a request carries (``evidence.details['parameter.*']``)."""
    details = request.get("evidence", {}).get("details", {})
    return {
        key[len(PARAMETER_PREFIX) :]: json.loads(value)
        for key, value in details.items()
        if key.startswith(PARAMETER_PREFIX)
    }


def publish_retrain_request(
    kafka: KafkaSettings,
    request: dict[str, Any],
    codec: Codec | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Produce ``request`` to ``retrain.requests`` (key: model name) and wait for the ack.

    :raises DeliveryError: Kafka did not acknowledge it within ``timeout_s``.
    """
    produce_and_wait(
        kafka, RETRAIN_REQUESTS, RETRAIN_REQUEST, request, request["model_name"], codec, timeout_s
    )


def open_retrain_run(
    store: ModelStore,
    model_name: str,
    trigger: Trigger,
    idempotency_key: str,
    *,
    reason: str | None = None,
    urgent: bool = False,
) -> str:
    """Open the MLflow run a retrain will train into (status ``queued``); return its id.

    :raises mlflow.exceptions.MlflowException: the tracking store refused or is away.
    """
    client = store.activate()
    tags = {
        TAG_STATUS: "queued",
        TAG_TRIGGER: trigger,
        TAG_MODEL: model_name,
        TAG_REQUEST: idempotency_key,
        TAG_URGENT: str(urgent).lower(),
    }
    if reason:
        tags[TAG_REASON] = reason
    run = client.create_run(
        store.experiment_id(), tags=tags, run_name=f"{model_name}-retrain-{trigger}"
    )
    return str(run.info.run_id)


def finish_run(store: ModelStore, run_id: str, status: RunStatus, detail: str) -> None:
    """Record a run's outcome in its tags and end it (FAILED for ``failed``, else FINISHED)."""
    client = store.activate()
    client.set_tag(run_id, TAG_STATUS, status)
    client.set_tag(run_id, TAG_OUTCOME_DETAIL, detail[:5000])
    client.set_terminated(run_id, "FAILED" if status == "failed" else "FINISHED")
