"""The FastAPI application: routers assembled, state started and stopped by the lifespan.

``create_app()`` reads every setting from the environment; tests and benchmarks pass a
:class:`~serving.state.ServingConfig` instead. ``python -m serving`` runs it under uvicorn.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.api import admin, analysis, drift, health, models, predict, references, train
from serving.api import features as features_api
from serving.api import pipelines as pipelines_api
from serving.auth import AdminAuthMiddleware
from serving.body_limit import BodyLimitMiddleware, body_limits
from serving.state import ServingConfig, ServingState


def create_app(config: ServingConfig | None = None) -> FastAPI:
    """A serving app; the model loads (and publishing starts) when the lifespan starts."""
    config = config or ServingConfig()
    state = ServingState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.start)
        # MLflow, pandas and scikit-learn leave ~a million long-lived objects; a full
        # collection walking them stalled /predict for ~280 ms (bench_serving's worst-run
        # p99). Freezing them keeps later collections to what requests allocate.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)

    app = FastAPI(
        title="Driftline serving",
        summary="Predictions whose every request and response is published to Kafka.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(health.router)
    app.include_router(predict.router)
    app.include_router(models.router)
    app.include_router(train.router)
    app.include_router(drift.router)
    app.include_router(references.router)
    app.include_router(admin.router)
    app.include_router(analysis.router)
    app.include_router(features_api.router)
    app.include_router(pipelines_api.router)
    # Added before the admin guard, so it runs after it: under /admin a caller without a
    # token gets the 401, not a 413, whatever it sends.
    app.add_middleware(
        BodyLimitMiddleware,
        default=config.serving.max_body_bytes,
        limits=body_limits(config.serving),
    )
    app.add_middleware(AdminAuthMiddleware, tokens=config.admin.token_list())
    return app


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Every HTTP error in the same shape as /predict's: ``error`` and ``message``."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type
    return JSONResponse(
        {"error": f"http_{exc.status_code}", "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A body or query that does not match its model: the first problem and where (422);
    a body that is not JSON at all is a 400 ``malformed_json``, as on ``/predict``."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type
    errors = exc.errors()
    first = errors[0] if errors else {"msg": "invalid request", "loc": ()}
    if first.get("type") == "json_invalid":  # the same answer /predict gives unparsable JSON
        ctx = first.get("ctx")
        reason = ctx.get("error", "") if isinstance(ctx, dict) else ""
        return JSONResponse(
            {"error": "malformed_json", "message": f"body is not JSON: {reason}".rstrip(": "),
             "location": "body"},
            status_code=400,
        )  # fmt: skip
    location = ".".join(str(part) for part in first.get("loc", ()))
    return JSONResponse(
        {"error": "invalid_request", "message": str(first.get("msg")), "location": location},
        status_code=422,
    )
