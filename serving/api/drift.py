"""``POST /drift/detect``: current rows against a named reference, with stream's statistics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from serving.api.deps import StateDep
from stream.stats import NoSharedFeaturesError, WindowDrift, detect

router = APIRouter(tags=["drift"])

#: Column of current rows that holds the label; reported, never scored as a feature.
TARGET = "target"


class DriftDetectIn(BaseModel):
    """Rows of named features (``null`` = missing), optionally with ``target``."""

    model_name: str | None = None
    reference_data_id: str = Field(default="reference", description="A known reference id.")
    current_data: list[dict[str, float | None]] = Field(min_length=1, max_length=100_000)


class FeatureResultPublic(BaseModel):
    """One feature's verdict."""

    feature: str
    is_drift: bool
    statistic: float | None
    threshold: float
    p_value: float | None
    sample_size: int


class DriftDetectPublic(BaseModel):
    """The window's verdict, per-feature results, and the library's full result."""

    model_name: str
    reference_data_id: str
    drift_score: float
    is_drift: bool
    features: list[FeatureResultPublic]
    missing_features: list[str]
    unknown_features: list[str]
    result: dict[str, Any]


@router.post("/drift/detect", responses={404: {}, 422: {}})
async def drift_detect(body: DriftDetectIn, state: StateDep) -> DriftDetectPublic:
    """Compare ``current_data`` with a reference: the drift score and each feature's test."""
    served = state.settings.model_name
    if body.model_name is not None and body.model_name != served:
        raise HTTPException(404, f"unknown model {body.model_name!r}; served: [{served!r}]")
    profile = await run_in_threadpool(state.references.get, body.reference_data_id)
    if profile is None:
        raise HTTPException(
            404,
            f"unknown reference_data_id {body.reference_data_id!r}; "
            f"known: {state.references.ids()}",
        )
    columns = sorted({k for row in body.current_data for k in row} - {TARGET})
    matrix = np.array(
        [[_cell(row.get(c)) for c in columns] for row in body.current_data], dtype=np.float64
    )
    try:
        result: WindowDrift = await run_in_threadpool(detect, profile, matrix, columns)
    except NoSharedFeaturesError as exc:
        raise HTTPException(422, str(exc)) from None
    data = result.data
    return DriftDetectPublic(
        model_name=served,
        reference_data_id=body.reference_data_id,
        drift_score=data.drift_score,
        is_drift=data.is_drift,
        features=[
            FeatureResultPublic(
                feature=f.meta.name,
                is_drift=f.data.is_drift,
                statistic=f.data.test_stat,
                threshold=f.data.threshold,
                p_value=f.data.p_val,
                sample_size=f.data.sample_size,
            )
            for f in data.features
        ],
        missing_features=data.missing_features,
        unknown_features=data.unknown_features,
        result=result.model_dump(mode="json"),
    )


def _cell(value: float | None) -> float:
    return math.nan if value is None else value
