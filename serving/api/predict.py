"""``POST /predict``: one row or a batch; every request becomes InferenceEvents."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from schemas.events import Variant
from serving.api.deps import StateDep
from serving.exceptions import ClientInputError
from serving.features import join_online
from serving.predictor import LoadedModel, Prediction
from serving.publishing import inference_event
from serving.requests import Partial, decode_json, parse_predict, partial_of
from serving.shadow import ShadowRow
from serving.state import ServingState

router = APIRouter(tags=["predict"])
log = logging.getLogger(__name__)

VARIANT: Variant = "baseline"


class PredictionPublic(BaseModel):
    """One row's answer."""

    request_id: str
    prediction: int = Field(description="Class label: 0 malignant, 1 benign.")
    probability: float = Field(description="Probability of the predicted label.")
    model_name: str
    model_version: str
    variant: str


class BatchRowPublic(BaseModel):
    """One row's answer inside a batch; each row is routed on its own key."""

    request_id: str
    prediction: int
    probability: float
    model_version: str
    variant: str


class BatchPublic(BaseModel):
    """A batch answer: rows in request order."""

    model_name: str
    predictions: list[BatchRowPublic]


class ErrorPublic(BaseModel):
    """Every 4xx/5xx of /predict: what is wrong, where, and the request id to find it by."""

    error: str
    message: str
    location: str | None = None
    request_id: str


_REQUEST_EXAMPLE = {
    "model_name": "breast-cancer-classifier",
    "features": {"mean radius": 14.1, "mean texture": 19.3, "...": "30 features in all"},
    "request_id": "req-1",
}

_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "features": {
                            "oneOf": [
                                {"type": "array", "items": {"type": "number"}},
                                {"type": "object", "additionalProperties": {"type": "number"}},
                            ]
                        },
                        "instances": {"type": "array", "items": {"type": "object"}},
                        "request_id": {"type": "string"},
                        "entity_id": {"type": "string"},
                    },
                },
                "example": _REQUEST_EXAMPLE,
            }
        },
    }
}


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ClientInputError(
            413, "body_too_large", f"body of {declared} bytes; at most {limit}", "body"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientInputError(413, "body_too_large", f"body exceeds {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/predict",
    response_model=PredictionPublic | BatchPublic,
    responses={400: {"model": ErrorPublic}, 404: {"model": ErrorPublic},
               413: {"model": ErrorPublic}, 422: {"model": ErrorPublic},
               503: {"model": ErrorPublic}},
    openapi_extra=_OPENAPI_BODY,
)  # fmt: skip
async def predict(request: Request, state: StateDep) -> JSONResponse:
    """Predict one row (``features``) or many (``instances``); publish one event per row."""
    started = time.perf_counter()
    partial = Partial(request_id=request.headers.get("x-request-id") or str(uuid.uuid4()))
    model = state.model
    try:
        body = decode_json(await _read_limited(request, state.settings.max_body_bytes))
        partial = partial_of(body, partial.request_id)
        if model is None:
            return _failure(state, partial, started, 503, "model_not_loaded",
                            "no model is loaded yet; see /ready")  # fmt: skip
        online = state.online_features.views.online_features_of(model.name)
        if online:  # the model declares online features: joined in by entity_id
            body = await run_in_threadpool(join_online, state.online_features, online, body)
        call = parse_predict(
            body,
            default_model=state.settings.model_name,
            features_of={model.name: model.features},
            max_rows=state.settings.max_batch_rows,
            request_id=partial.request_id,
        )
        routed = [state.route(row.entity_id or row.request_id, model) for row in call.rows]
        predictions = _predict_routed([row.values for row in call.rows], routed)
    except ClientInputError as exc:
        return _client_error(state, partial, started, exc)
    except VariantFailure as exc:  # the routed model raised: the error is that variant's
        log.exception("prediction failed (request %s)", partial.request_id)
        return _failure(state, partial, started, 500, type(exc.__cause__).__name__,
                        "internal error; the request id finds it in the logs",
                        exc.served_as)  # fmt: skip
    except Exception as exc:
        log.exception("prediction failed (request %s)", partial.request_id)
        return _failure(state, partial, started, 500, type(exc).__name__,
                        "internal error; the request id finds it in the logs")  # fmt: skip
    latency_s = time.perf_counter() - started
    latency_ms = latency_s * 1000.0
    for row, answer, (served, variant) in zip(call.rows, predictions, routed, strict=True):
        state.emit(
            inference_event(
                request_id=row.request_id,
                model_name=served.name,
                model_version=served.version,
                variant=variant,
                features=dict(zip(served.features, row.values, strict=True)),
                prediction=float(answer.label),
                probabilities=answer.probabilities,
                latency_ms=latency_ms,
                outcome="ok",
                entity_id=row.entity_id,
            )
        )
    if state.shadow is not None:  # a copy for the shadow, predicted off the request path
        state.copy_to_shadow(
            [ShadowRow(row.request_id, row.entity_id, row.values) for row in call.rows]
        )
    variants = {variant for _, variant in routed}
    label = variants.pop() if len(variants) == 1 else "mixed"
    metrics = state.metrics
    metrics.request_latency.labels(model.name, label, "200").observe(latency_s)
    metrics.requests.labels(model.name, label, "200").inc()
    for _, variant in routed:
        metrics.predictions.labels(model.name, variant).inc()
    if not call.batch:
        row, answer, (served, variant) = call.rows[0], predictions[0], routed[0]
        return JSONResponse(
            {
                "request_id": row.request_id,
                "prediction": answer.label,
                "probability": answer.probability,
                "model_name": served.name,
                "model_version": served.version,
                "variant": variant,
            }
        )
    return JSONResponse(
        {
            "model_name": model.name,
            "predictions": [
                {
                    "request_id": r.request_id,
                    "prediction": a.label,
                    "probability": a.probability,
                    "model_version": served.version,
                    "variant": variant,
                }
                for r, a, (served, variant) in zip(call.rows, predictions, routed, strict=True)
            ],
        }
    )


class VariantFailure(Exception):
    """A routed model raised while predicting (the cause): the failure is counted for that
    variant and version, so a canary that fails shows in the canary's SloWindows (and is
    rolled back), not in the baseline's."""

    def __init__(self, served_as: tuple[LoadedModel, Variant]) -> None:
        super().__init__(f"{served_as[1]} version {served_as[0].version} failed to predict")
        self.served_as = served_as


def _predict_routed(
    rows: list[list[float]], routed: list[tuple[LoadedModel, Variant]]
) -> list[Prediction]:
    """Predict each row with its routed model: one vectorised call per model.

    :raises VariantFailure: a model raised (the first to fail names the request's variant).
    """
    groups: dict[int, list[int]] = {}
    for i, (served, _) in enumerate(routed):
        groups.setdefault(id(served), []).append(i)
    out: list[Prediction | None] = [None] * len(rows)
    for indices in groups.values():
        served = routed[indices[0]][0]
        try:
            answers = served.predict([rows[i] for i in indices])
        except Exception as exc:
            raise VariantFailure(routed[indices[0]]) from exc
        for i, answer in zip(indices, answers, strict=True):
            out[i] = answer
    return [answer for answer in out if answer is not None]


def _client_error(
    state: ServingState, partial: Partial, started: float, exc: ClientInputError
) -> JSONResponse:
    return _respond_error(
        state, partial, started, exc.status, exc.code, exc.message, exc.location, "client_error"
    )


def _failure(
    state: ServingState, partial: Partial, started: float, status: int, code: str, message: str,
    served_as: tuple[LoadedModel, Variant] | None = None,
) -> JSONResponse:  # fmt: skip
    return _respond_error(
        state, partial, started, status, code, message, None, "server_error", served_as
    )


def _respond_error(
    state: ServingState,
    partial: Partial,
    started: float,
    status: int,
    code: str,
    message: str,
    location: str | None,
    outcome: str,
    served_as: tuple[LoadedModel, Variant] | None = None,
) -> JSONResponse:
    """Publish and count the failed request; ``served_as``: the model and variant it was
    routed to, when it got that far (else the champion, as ``baseline``)."""
    latency_s = time.perf_counter() - started
    model = state.model if served_as is None else served_as[0]
    variant: Variant = VARIANT if served_as is None else served_as[1]
    served = model is not None and partial.model_name in (None, model.name)
    name = model.name if served and model else (partial.model_name or state.settings.model_name)
    version = model.version if served and model else ""
    state.emit(
        inference_event(
            request_id=partial.request_id,
            model_name=name,
            model_version=version,
            variant=variant,
            latency_ms=latency_s * 1000.0,
            outcome="client_error" if outcome == "client_error" else "server_error",
            error_type=code,
            entity_id=partial.entity_id,
        )
    )
    label = name if served else "unknown"
    metrics = state.metrics
    metrics.request_latency.labels(label, variant, str(status)).observe(latency_s)
    metrics.requests.labels(label, variant, str(status)).inc()
    metrics.errors.labels(label, outcome, code).inc()
    body = {"error": code, "message": message, "location": location,
            "request_id": partial.request_id}  # fmt: skip
    return JSONResponse(body, status_code=status)
