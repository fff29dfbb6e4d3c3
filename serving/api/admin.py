"""``/admin``: rollout control. Every path here is guarded by :mod:`serving.auth`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from serving.api.deps import StateDep

router = APIRouter(prefix="/admin", tags=["admin"])


class ReloadPublic(BaseModel):
    """Result of a reload."""

    model_name: str
    alias: str
    previous_version: str | None
    version: str


@router.get("")
async def admin_index() -> dict[str, list[str]]:
    """The admin operations available."""
    return {"operations": ["POST /admin/reload"]}


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
