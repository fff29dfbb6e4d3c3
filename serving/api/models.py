"""``GET /models``: what is served, which version, and its rollout state."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from serving.api.deps import StateDep

router = APIRouter(tags=["models"])


class RolloutPublic(BaseModel):
    """Live rollout state; canary routing is not enabled yet, so all traffic is baseline."""

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
    return ModelsPublic(
        models=[
            ModelPublic(
                name=model.name,
                version=model.version,
                alias=model.alias,
                features=list(model.features),
                rollout=RolloutPublic(baseline_version=model.version),
            )
        ]
    )
