"""``/admin``: rollout control. Every path here is guarded by :mod:`serving.auth`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import redis
from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, Field

from schemas.exceptions import DeliveryError, ModelNotFoundError
from schemas.promotion import (
    NothingToPromoteError,
    execute_rollback,
    plan_rollback,
    promote_canary,
    promote_shadow,
)
from schemas.redaction import redact_credentials
from schemas.rollout_state import RolloutStore
from serving.api.deps import StateDep
from serving.rollout import RolloutWatcher
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
    return {
        "operations": [
            "POST /admin/reload",
            "GET /admin/canary",
            "POST /admin/canary",
            "GET /admin/shadow",
            "POST /admin/shadow",
            "DELETE /admin/shadow",
            "POST /admin/promote",
            "POST /admin/rollback",
        ]
    }


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
    store, watcher = _rollout(state)
    name = state.settings.model_name
    current, _ = state.routing
    version = canary_in.version or current.canary_version
    if version is None and canary_in.share > 0:
        raise HTTPException(422, "no canary version yet: give 'version'")
    exists = version is None or await run_in_threadpool(state.store.version_exists, name, version)
    if not exists:
        raise HTTPException(404, f"{name!r} has no version {version!r} in the registry")
    async with _rollout_change(watcher):
        await run_in_threadpool(store.write_canary, name, version, canary_in.share)
    return _canary_public(state)


@router.post("/reload")
async def reload_model(state: StateDep) -> ReloadPublic:
    """Load the model behind the alias (``champion``) again, without a restart.

    MLflow away or the alias gone is a 503 (the loaded model keeps serving), never a 500
    whose log line would carry the tracking URL.
    """
    try:
        previous, version = await run_in_threadpool(state.reload)
    except (ModelNotFoundError, MlflowException, OSError) as exc:
        message = redact_credentials(getattr(exc, "message", None) or str(exc))
        raise HTTPException(503, f"could not load the model; still serving: {message}") from None
    return ReloadPublic(
        model_name=state.settings.model_name,
        alias=state.settings.model_alias,
        previous_version=previous,
        version=version,
    )


class ShadowIn(BaseModel):
    """The registry version that gets a copy of the traffic."""

    version: str = Field(min_length=1, max_length=64, description="Registry version.")


class ShadowPublic(BaseModel):
    """The shadow version this replica copies traffic to (every replica within a second)."""

    model_name: str
    baseline_version: str | None
    shadow_version: str | None
    queued: int = Field(description="Requests waiting for the shadow on this replica.")


class PromoteIn(BaseModel):
    """Why (recorded in the DeploymentEvent), and which variant becomes the champion."""

    reason: str = Field(default="manual promotion", max_length=500)
    variant: Literal["canary", "shadow"] = Field(
        default="canary", description="Promote the canary (default) or the shadow."
    )


class PromotePublic(BaseModel):
    """What the promotion changed."""

    model_name: str
    previous_champion_version: str | None
    champion_version: str
    deployment_id: str


def _rollout(state: ServingState) -> tuple[RolloutStore, RolloutWatcher]:
    if state.rollout_store is None or state.watcher is None:
        raise HTTPException(503, "rollout control needs Redis (DRIFTLINE_REDIS_URL)")
    return state.rollout_store, state.watcher


@asynccontextmanager
async def _rollout_change(watcher: RolloutWatcher, done: str = "changed") -> AsyncIterator[None]:
    """Run one change of rollout state, then apply it to this replica at once.

    Other replicas pick it up by polling within a second. Redis failing is a 503; Kafka not
    acknowledging the DeploymentEvent is a 502 that says the change itself happened.
    """
    try:
        yield
    except redis.RedisError as exc:
        raise HTTPException(503, f"could not use rollout state in Redis: {exc}") from None
    except DeliveryError as exc:
        await run_in_threadpool(watcher.poll_once)
        raise HTTPException(
            502, f"{done}, but the DeploymentEvent was not recorded: {exc}"
        ) from None
    await run_in_threadpool(watcher.poll_once)


def _shadow_public(state: ServingState) -> ShadowPublic:
    shadow = state.shadow
    return ShadowPublic(
        model_name=state.settings.model_name,
        baseline_version=state.model.version if state.model else None,
        shadow_version=shadow.version if shadow else None,
        queued=state.shadow_runner.pending(),
    )


@router.get("/shadow")
async def get_shadow(state: StateDep) -> ShadowPublic:
    """The live shadow version (None: no shadow)."""
    return _shadow_public(state)


@router.post("/shadow", responses={404: {}, 503: {}})
async def set_shadow(shadow_in: ShadowIn, state: StateDep) -> ShadowPublic:
    """Copy traffic to ``version`` off the request path; its answers are published only."""
    store, watcher = _rollout(state)
    name = state.settings.model_name
    if not await run_in_threadpool(state.store.version_exists, name, shadow_in.version):
        raise HTTPException(404, f"{name!r} has no version {shadow_in.version!r} in the registry")
    async with _rollout_change(watcher):
        await run_in_threadpool(store.write_shadow, name, shadow_in.version)
    return _shadow_public(state)


@router.delete("/shadow", responses={503: {}})
async def clear_shadow(state: StateDep) -> ShadowPublic:
    """Stop copying traffic to a shadow."""
    store, watcher = _rollout(state)
    async with _rollout_change(watcher):
        await run_in_threadpool(store.write_shadow, state.settings.model_name, None)
    return _shadow_public(state)


@router.post("/promote", responses={404: {}, 409: {}, 502: {}, 503: {}})
async def promote(state: StateDep, promote_in: PromoteIn | None = None) -> PromotePublic:
    """Make the canary (or, with ``"variant": "shadow"``, the shadow) the champion: alias
    moved, that variant cleared, DeploymentEvent published.

    This replica reloads at once; every other replica within a second (rollout state).
    """
    store, watcher = _rollout(state)
    promote_in = promote_in or PromoteIn()
    reason = promote_in.reason
    name = state.settings.model_name
    promote = promote_shadow if promote_in.variant == "shadow" else promote_canary
    async with _rollout_change(watcher, done="promoted"):
        try:
            promotion, event = await run_in_threadpool(
                promote, name, store, state.store, state.config.kafka, reason,
                state.settings.model_alias,
            )  # fmt: skip
        except NothingToPromoteError as exc:
            raise HTTPException(409, str(exc)) from None
        except ModelNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
    return PromotePublic(
        model_name=name,
        previous_champion_version=promotion.previous_champion,
        champion_version=promotion.champion_version,
        deployment_id=event["deployment_id"],
    )


class RollbackIn(BaseModel):
    """Why; recorded in the DeploymentEvent."""

    reason: str = Field(default="manual rollback", max_length=500)


class RollbackPublic(BaseModel):
    """What the rollback changed."""

    model_name: str
    champion_version: str | None
    canary_version_before: str | None
    canary_share_before: float
    deployment_id: str


@router.post("/rollback", responses={502: {}, 503: {}})
async def rollback(state: StateDep, rollback_in: RollbackIn | None = None) -> RollbackPublic:
    """Send all traffic back to the champion and record a ``rolled_back`` DeploymentEvent.

    The same operation as ``driftline rollback --confirm``; a shadow, if any, stays.
    """
    store, watcher = _rollout(state)
    reason = (rollback_in or RollbackIn()).reason
    name = state.settings.model_name
    async with _rollout_change(watcher, done="rolled back"):
        plan = await run_in_threadpool(plan_rollback, name, store, state.store)
        event = await run_in_threadpool(execute_rollback, plan, store, state.config.kafka, reason)
    return RollbackPublic(
        model_name=name,
        champion_version=plan.champion_version,
        canary_version_before=plan.before.canary_version,
        canary_share_before=plan.before.canary_share,
        deployment_id=event["deployment_id"],
    )
