"""``/health`` (liveness), ``/ready`` (model loaded, broker reachable), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.api.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Always cheap; checks nothing else."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: a model is loaded and (with publishing on) the broker is reachable."""
    model_ok = state.model is not None
    publisher = state.publisher
    broker = "disabled" if publisher is None else ("up" if publisher.broker_up else "down")
    is_ready = model_ok and broker != "down"
    body = {
        "ready": is_ready,
        "model": (
            {"name": state.model.name, "version": state.model.version} if state.model else None
        ),
        "broker": broker,
        "events_pending": publisher.pending() if publisher else 0,
        "spool_bytes": publisher.spool.size_bytes if publisher else 0,
    }
    return JSONResponse(body, status_code=200 if is_ready else 503)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition of this instance's metrics."""
    if state.publisher is not None:
        state.metrics.events_buffered.set(state.publisher.pending())
        state.metrics.spool_bytes.set(state.publisher.spool.size_bytes)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
