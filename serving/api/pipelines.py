"""``POST /pipelines/trigger`` and ``GET /pipelines/{job_id}``: data jobs on named datasets.

Triggering is an admin action (bearer token, like ``POST /references``): every type
writes something shared (a registered dataset, the drift reference, events on the
inference topic, Redis). Reading a job's progress is open: its id is an unguessable
UUID and the record holds no secret. What each type does: :mod:`serving.pipelines`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.feature_store import FeatureStore
from serving.api.deps import StateDep, admin_refusal
from serving.exceptions import ClientInputError
from serving.pipelines import (
    PIPELINE_TYPES,
    Job,
    JobFailedError,
    Work,
    backfill_states,
    dataset_frame,
    model_rows,
    processed_id,
    profile_of,
    replay_chunks,
    replay_event,
    write_profile,
)
from serving.predictor import LoadedModel
from serving.state import ServingState

router = APIRouter(tags=["pipelines"])


class PipelineTriggerIn(BaseModel):
    """Which job on which dataset (an id of ``GET /references``)."""

    model_config = ConfigDict(extra="forbid")

    pipeline_type: str
    dataset: str


def _error(exc: ClientInputError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.code, "message": exc.message, "location": exc.location}, exc.status
    )


@router.post(
    "/pipelines/trigger",
    responses={400: {}, 401: {}, 403: {}, 404: {}, 422: {}, 429: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PipelineTriggerIn.model_json_schema()}},
        }
    },
)
async def trigger(request: Request, state: StateDep) -> JSONResponse:
    """Accept a job (admin token); its progress is at ``GET /pipelines/{job_id}``.

    The body is read after the token check (not as a parameter, which FastAPI would
    validate first): a caller without a token gets the 401, not a 422 about the body.
    """
    refusal = admin_refusal(request, state)
    if refusal is not None:
        return refusal
    try:
        body = PipelineTriggerIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    try:
        if body.pipeline_type not in PIPELINE_TYPES:
            raise ClientInputError(
                400, "unknown_pipeline_type",
                f"unknown pipeline_type {body.pipeline_type!r}; known: {list(PIPELINE_TYPES)}",
                "pipeline_type",
            )  # fmt: skip
        known = await run_in_threadpool(state.datasets.ids)
        if body.dataset not in known:
            raise ClientInputError(
                404, "unknown_dataset",
                f"unknown dataset {body.dataset!r}; known: {known}", "dataset",
            )  # fmt: skip
        model = state.model
        if model is None:
            raise ClientInputError(503, "model_not_loaded", "no model is loaded yet; see /ready")
        work = _WORK[body.pipeline_type](state, model, body.dataset)
        job = state.pipelines.submit(body.pipeline_type, body.dataset, work)
    except ClientInputError as exc:
        return _error(exc)
    return JSONResponse({"status": "success", "job_id": job.job_id})


@router.get("/pipelines/{job_id}", responses={404: {}})
async def job_status(job_id: str, state: StateDep) -> JSONResponse:
    """A job's status (queued, running, succeeded, failed), progress 0-1 and result."""
    job = state.pipelines.get(job_id)
    if job is None:
        return _error(
            ClientInputError(404, "unknown_job", f"no pipeline job {job_id!r} (kept in memory)")
        )
    return JSONResponse(job.public())


def _rows(state: ServingState, model: LoadedModel, dataset: str, job: Job) -> Any:
    frame = dataset_frame(state.datasets, dataset)
    if frame is None:
        raise JobFailedError(f"dataset {dataset!r} disappeared")
    rows, dropped = model_rows(frame, model.features)
    job.progress = 0.2
    return rows, dropped


def _data_processing(state: ServingState, model: LoadedModel, dataset: str) -> Work:
    def work(job: Job) -> dict[str, Any]:
        rows, dropped = _rows(state, model, dataset, job)
        profile = profile_of(rows, model.features, dataset)
        job.progress = 0.7
        reference_id = processed_id(dataset)
        state.datasets.save(reference_id, rows, replace=True)
        job.message = f"{len(rows)} rows valid, {dropped} dropped; registered {reference_id!r}"
        return {
            "reference_id": reference_id,
            "rows": len(rows),
            "dropped_rows": dropped,
            "features": len(model.features),
            "model": f"{model.name}/{model.version}",
            "profile_id": profile.content_id(),
        }

    return work


def _reference_rebuild(state: ServingState, model: LoadedModel, dataset: str) -> Work:
    def work(job: Job) -> dict[str, Any]:
        root = state.store.profiles_dir
        if root is None:
            raise JobFailedError("the model store has no profiles directory")
        rows, dropped = _rows(state, model, dataset, job)
        profile = profile_of(rows, model.features, dataset)
        target = root / model.name / f"{model.version}.json"
        write_profile(target, profile)
        job.message = (
            f"drift reference of {model.name}/{model.version} rebuilt from {dataset!r}; "
            "the drift processor reads it at its next start"
        )
        return {"path": str(target), "rows": len(rows), "dropped_rows": dropped,
                "profile_id": profile.content_id()}  # fmt: skip

    return work


def _replay(state: ServingState, model: LoadedModel, dataset: str) -> Work:
    def work(job: Job) -> dict[str, Any]:
        if state.publisher is None:
            raise JobFailedError("event publishing is off (DRIFTLINE_SERVING_PUBLISH_EVENTS)")
        rows, dropped = _rows(state, model, dataset, job)
        values = rows[list(model.features)].to_numpy(dtype=float).tolist()
        chunks = replay_chunks(len(values))
        for n, (start, end) in enumerate(chunks, start=1):
            for i, answer in enumerate(model.predict(values[start:end]), start=start):
                features = dict(zip(model.features, values[i], strict=True))
                state.emit(
                    replay_event(
                        f"replay-{job.job_id}-{i}", model.name, model.version, features,
                        answer.label, answer.probabilities,
                    )
                )  # fmt: skip
            job.progress = 0.2 + 0.8 * n / len(chunks)
        job.message = f"{len(values)} InferenceEvents published ({dropped} rows dropped)"
        return {"events": len(values), "dropped_rows": dropped}

    return work


def _feature_backfill(state: ServingState, model: LoadedModel, dataset: str) -> Work:
    def work(job: Job) -> dict[str, Any]:
        views = [v for v in state.online_features.views if v.accepts(model.name)]
        if not views:
            raise JobFailedError(f"no feature view reads model {model.name!r}")
        frame = dataset_frame(state.datasets, dataset)
        if frame is None:
            raise JobFailedError(f"dataset {dataset!r} disappeared")
        deltas, used = backfill_states(frame, views, int(time.time() * 1000))
        job.progress = 0.5
        store = FeatureStore(state.online_features.client(), views)
        written = store.write(deltas).entities
        job.message = f"{used} rows merged into {written} entity hashes"
        return {"rows": used, "entities_written": written, "views": [v.name for v in views]}

    return work


_WORK = {
    "data_processing": _data_processing,
    "reference_rebuild": _reference_rebuild,
    "replay": _replay,
    "feature_backfill": _feature_backfill,
}
