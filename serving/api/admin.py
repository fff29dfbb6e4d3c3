"""``/admin``: rollout control. Every path here is guarded by :mod:`serving.auth`."""

from __future__ import annotations

import redis
from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from serving.api.deps import StateDep
from serving.rollout import RolloutState
from serving.state import ServingState

router = APIRouter(prefix="/admin", tags=["admin"])


class ReloadPublic(BaseModel):
    """Result of a reload."""

    model_name: str
    alias: str
    previous_version: str | None
    version: str


class CanaryIn(BaseModel):
    """A new canary share, and optionally a new canary version (else the current one)."""

    share: float = Field(ge=0.0, le=1.0, description="Share of traffic for the canary.")
    version: str | None = Field(default=None, description="Registry version of the canary.")


class CanaryPublic(BaseModel):
    """The rollout state this replica applies (every replica within a second)."""

    model_name: str
    baseline_version: str | None
    canary_version: str | None
    canary_share: float


@router.get("")
async def admin_index() -> dict[str, list[str]]:
    """The admin operations available."""
    return {"operations": ["POST /admin/reload", "GET /admin/canary", "POST /admin/canary"]}


def _canary_public(state: ServingState) -> CanaryPublic:
    rollout, canary = state.routing
    return CanaryPublic(
        model_name=state.settings.model_name,
        baseline_version=state.model.version if state.model else None,
        canary_version=canary.version if canary else rollout.canary_version,
        canary_share=rollout.canary_share if canary else 0.0,
    )


@router.get("/canary")
async def get_canary(state: StateDep) -> CanaryPublic:
    """The live canary version and share."""
    return _canary_public(state)


@router.post("/canary", responses={404: {}, 422: {}, 503: {}})
async def set_canary(canary_in: CanaryIn, state: StateDep) -> CanaryPublic:
    """Set the canary share (and version) in Redis; every replica applies it within a second."""
    store = state.rollout_store
    if store is None or state.watcher is None:
        raise HTTPException(503, "canary routing needs Redis (DRIFTLINE_REDIS_URL)")
    name = state.settings.model_name
    current, _ = state.routing
    version = canary_in.version or current.canary_version
    if version is None and canary_in.share > 0:
        raise HTTPException(422, "no canary version yet: give 'version'")
    exists = version is None or await run_in_threadpool(state.store.version_exists, name, version)
    if not exists:
        raise HTTPException(404, f"{name!r} has no version {version!r} in the registry")
    try:
        await run_in_threadpool(store.write, name, RolloutState(version, canary_in.share))
    except redis.RedisError as exc:
        raise HTTPException(503, f"could not write rollout state to Redis: {exc}") from None
    await run_in_threadpool(state.watcher.poll_once)  # this replica at once, others by polling
    return _canary_public(state)


@router.post("/reload")
async def reload_model(state: StateDep) -> ReloadPublic:
    """Load the model behind the alias (``champion``) again, without a restart."""
    previous, version = await run_in_threadpool(state.reload)
    return ReloadPublic(
        model_name=state.settings.model_name,
        alias=state.settings.model_alias,
        previous_version=previous,
        version=version,
    )
