"""``POST /features/online``: materialised feature values per entity, in Feast's shape.

Request (Feast's online API): ``{"entity_rows": [{"user_id": "u1"}], "feature_refs":
["user_stats:avg_transaction_amount"]}``. An unknown ref is a 400 listing the known
ones; an unknown entity gets ``null`` values (status ``NOT_FOUND``), not an error. Open
like ``/predict``: it reads what the features processor wrote.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from serving.api.deps import StateDep
from serving.exceptions import ClientInputError
from serving.features import entity_rows, feast_response

router = APIRouter(tags=["features"])


class OnlineFeaturesIn(BaseModel):
    """Entity rows (join key -> id) and ``view:feature`` refs."""

    model_config = ConfigDict(extra="forbid")

    entity_rows: list[dict[str, Any]] = Field(min_length=1)
    feature_refs: list[str] = Field(min_length=1)


@router.post("/features/online", responses={400: {}, 413: {}, 422: {}, 503: {}})
async def online_features(body: OnlineFeaturesIn, state: StateDep) -> JSONResponse:
    """Each ref's value for each entity row, with the event time it reflects."""
    settings = state.settings
    service = state.online_features
    try:
        if len(body.entity_rows) > settings.features_max_rows:
            raise ClientInputError(
                413, "too_many_rows",
                f"{len(body.entity_rows)} entity rows; at most {settings.features_max_rows}",
                "entity_rows",
            )  # fmt: skip
        if len(body.feature_refs) > settings.features_max_refs:
            raise ClientInputError(
                413, "too_many_refs",
                f"{len(body.feature_refs)} feature refs; at most {settings.features_max_refs}",
                "feature_refs",
            )  # fmt: skip
        refs = service.parse_refs(body.feature_refs)
        keys, rows = entity_rows(body.entity_rows, refs)
        values = await run_in_threadpool(service.lookup, refs, rows)
    except ClientInputError as exc:
        return JSONResponse(
            {"error": exc.code, "message": exc.message, "location": exc.location}, exc.status
        )
    return JSONResponse(feast_response(keys, rows, refs, values))
