"""``/models/train``: start a retrain (admin token) and follow it.

Serving never trains and never imports retrain (DESIGN.md): ``POST /models/train`` opens
the MLflow run itself (status ``queued``), publishes a RetrainRequest (trigger ``manual``)
that carries the run id, and answers 202 at once; the retrain worker trains into that
run. ``GET /models/train/{run_id}`` reads the run back from MLflow.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.breast_cancer import check_parameters
from schemas.exceptions import DeliveryError, ModelNotFoundError
from schemas.redaction import redact_credentials
from schemas.retrain_requests import (
    TAG_MODEL,
    TAG_OUTCOME_DETAIL,
    TAG_STATUS,
    TAG_TRIGGER,
    TAG_VERSION,
    finish_run,
    open_retrain_run,
    publish_retrain_request,
    retrain_request,
)
from serving.api.deps import StateDep, admin_refusal
from serving.state import ServingState

router = APIRouter(tags=["training"])

#: Datasets a retrain can start from: the reference training data (plus recent traffic).
TRAINABLE = ("training", "reference")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


class TrainIn(BaseModel):
    """A retrain request."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="Registered model to retrain; an unknown name is a 404 unless "
        "`create_model` is true.",
    )
    create_model: bool = Field(
        default=False,
        description="Register `model_name` as a new model when the registry does not hold "
        "it (a typo must not start training a model nothing serves).",
    )
    reason: str | None = Field(default=None, max_length=500, description="Why; recorded.")
    urgent: bool = Field(
        default=False, description="Bypass the model's retrain cooldown (never its lock)."
    )
    dataset: str | None = Field(
        default=None, description="Dataset id to start from: 'training' (default) or 'reference'."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="LogisticRegression hyper-parameters: C, max_iter, tol, fit_intercept.",
    )


class TrainAccepted(BaseModel):
    """The run the worker will train into, and where to follow it."""

    run_id: str
    status_url: str
    idempotency_key: str
    model_name: str
    urgent: bool


class TrainStatus(BaseModel):
    """A training run as MLflow records it."""

    run_id: str
    status: str = Field(
        description="queued, training, challenger, rejected, suppressed or failed (retrain "
        "runs); else MLflow's own status, lower case."
    )
    mlflow_status: str
    model_name: str | None
    model_version: str | None
    trigger: str | None
    detail: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int | None
    end_time: int | None


def _error(status: int, code: str, message: str, location: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if location is not None:
        body["location"] = location
    return JSONResponse(body, status)


@router.post(
    "/models/train",
    status_code=202,
    responses={401: {}, 403: {}, 404: {}, 422: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": TrainIn.model_json_schema()}},
        }
    },
)
async def start_training(request: Request, state: StateDep) -> JSONResponse:
    """Open an MLflow run and ask the retrain worker to train into it (admin token).

    The body is read after the token check, not as a parameter: FastAPI validates body
    parameters before the handler runs, so a caller without a token would get a 422
    that describes the body instead of the 401.
    """
    refusal = admin_refusal(request, state)
    if refusal is not None:
        return refusal
    try:
        train_in = TrainIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    problems = check_parameters(train_in.parameters)
    if problems:
        first = min(problems)
        return _error(
            422,
            "invalid_parameter",
            "; ".join(f"{n}: {p}" for n, p in sorted(problems.items())),
            f"parameters.{first}",
        )
    if train_in.dataset is not None:
        refused = await run_in_threadpool(_dataset_refusal, state, train_in.dataset)
        if refused is not None:
            return refused
    return await run_in_threadpool(_accept, state, train_in)


def _dataset_refusal(state: ServingState, dataset: str) -> JSONResponse | None:
    known = state.datasets.ids()
    if dataset not in known:
        return _error(404, "unknown_dataset", f"no dataset {dataset!r}; known: {known}", "dataset")
    if dataset not in TRAINABLE:
        return _error(
            422,
            "dataset_not_trainable",
            f"a retrain starts from the reference training data plus recent labelled traffic; "
            f"dataset {dataset!r} cannot be trained on (use one of {list(TRAINABLE)})",
            "dataset",
        )
    return None


def _accept(state: ServingState, train_in: TrainIn) -> JSONResponse:
    from mlflow.exceptions import MlflowException

    if not train_in.create_model:
        try:
            state.store.require_model(train_in.model_name)
        except ModelNotFoundError as exc:
            return _error(404, "unknown_model", str(exc), "model_name")
        except MlflowException as exc:
            return _error(
                503,
                "mlflow_unavailable",
                f"could not read the registry: {redact_credentials(exc.message)}",
            )
    key = f"manual-{uuid.uuid4()}"
    try:
        run_id = open_retrain_run(
            state.store, train_in.model_name, "manual", key,
            reason=train_in.reason, urgent=train_in.urgent,
        )  # fmt: skip
    except MlflowException as exc:
        return _error(
            503,
            "mlflow_unavailable",
            f"could not open an MLflow run: {redact_credentials(exc.message)}",
        )
    request = retrain_request(
        train_in.model_name,
        "manual",
        "serving:/models/train",
        idempotency_key=key,
        urgent=train_in.urgent,
        reason=train_in.reason,
        mlflow_run_id=run_id,
        parameters=train_in.parameters,
        dataset=train_in.dataset,
    )
    try:
        publish_retrain_request(state.config.kafka, request)
    except DeliveryError as exc:
        with contextlib.suppress(MlflowException):  # the 503 says what matters
            finish_run(state.store, run_id, "failed", f"request not published: {exc}")
        return _error(503, "kafka_unavailable", f"the retrain request was not recorded: {exc}")
    accepted = TrainAccepted(
        run_id=run_id,
        status_url=f"/models/train/{run_id}",
        idempotency_key=key,
        model_name=train_in.model_name,
        urgent=train_in.urgent,
    )
    return JSONResponse(accepted.model_dump(), 202)


@router.get("/models/train/{run_id}", responses={404: {}, 503: {}})
async def training_status(run_id: str, state: StateDep) -> JSONResponse:
    """Status, metrics and tags of a training run, from MLflow."""
    if not _RUN_ID.fullmatch(run_id):
        return _error(404, "unknown_run", f"{run_id!r} is not an MLflow run id", "run_id")
    return await run_in_threadpool(_status, state, run_id)


def _status(state: ServingState, run_id: str) -> JSONResponse:
    from mlflow.exceptions import MlflowException

    try:
        run = state.store.activate().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return _error(404, "unknown_run", f"no MLflow run {run_id!r}", "run_id")
        return _error(
            503, "mlflow_unavailable", f"could not read the run: {redact_credentials(exc.message)}"
        )
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    mlflow_status = str(run.info.status)
    status = TrainStatus(
        run_id=run_id,
        status=tags.get(TAG_STATUS, mlflow_status.lower()),
        mlflow_status=mlflow_status,
        model_name=tags.get(TAG_MODEL),
        model_version=tags.get(TAG_VERSION),
        trigger=tags.get(TAG_TRIGGER),
        detail=tags.get(TAG_OUTCOME_DETAIL),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        tags=tags,
        start_time=run.info.start_time,
        end_time=run.info.end_time,
    )
    return JSONResponse(status.model_dump())
