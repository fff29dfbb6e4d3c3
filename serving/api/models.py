"""``GET /models``: what is served, which version, and its rollout state."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from serving.api.deps import StateDep

router = APIRouter(tags=["models"])


class RolloutPublic(BaseModel):
    """Live rollout state (from Redis, re-read every ``rollout_poll_s``)."""

    baseline_version: str
    canary_version: str | None = None
    canary_share: float = 0.0
    shadow_version: str | None = None


class ModelPublic(BaseModel):
    """One served model."""

    name: str
    version: str
    alias: str
    features: list[str]
    rollout: RolloutPublic


class ModelsPublic(BaseModel):
    """Every served model."""

    models: list[ModelPublic]


@router.get("/models")
async def list_models(state: StateDep) -> ModelsPublic:
    """The models this instance serves, their versions and rollout state."""
    model = state.model
    if model is None:
        return ModelsPublic(models=[])
    rollout, canary = state.routing
    return ModelsPublic(
        models=[
            ModelPublic(
                name=model.name,
                version=model.version,
                alias=model.alias,
                features=list(model.features),
                rollout=RolloutPublic(
                    baseline_version=model.version,
                    canary_version=canary.version if canary else None,
                    canary_share=rollout.canary_share if canary else 0.0,
                    shadow_version=state.shadow.version if state.shadow else None,
                ),
            )
        ]
    )
