"""``/references``: register named datasets (CSV text or JSON rows) and list them.

Registering is an admin action (bearer token from ``DRIFTLINE_ADMIN_TOKENS``, the same
check as ``/admin``): it writes to the data dir every replica shares and can replace
what drift checks compare against. Listing is open, like ``/models``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from serving.api.deps import StateDep, admin_refusal
from serving.datasets import parse_csv, parse_rows, validate_id
from serving.exceptions import ClientInputError

router = APIRouter(tags=["references"])


class ReferenceIn(BaseModel):
    """A dataset: ``rows`` (objects of column: number) or ``csv`` (text with a header)."""

    id: str = Field(description="1-64 of [A-Za-z0-9._-], starting with a letter or digit.")
    rows: list[Any] | None = None
    csv: str | None = None
    replace: bool = Field(default=False, description="Replace a dataset with this id.")


class ReferencePublic(BaseModel):
    """A registered dataset."""

    id: str
    rows: int
    columns: list[str]


class ReferencesPublic(BaseModel):
    """Every dataset id usable as ``reference_data_id``."""

    ids: list[str]


@router.get("/references")
async def list_references(state: StateDep) -> ReferencesPublic:
    """Every known dataset id: the built-ins and every registered one."""
    return ReferencesPublic(ids=await run_in_threadpool(state.datasets.ids))


@router.post(
    "/references",
    status_code=201,
    responses={401: {}, 403: {}, 409: {}, 413: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ReferenceIn.model_json_schema()}},
        }
    },
)
async def register_reference(request: Request, state: StateDep) -> JSONResponse:
    """Register a dataset under an id (admin token); usable at once by ``/drift/detect``."""
    refusal = admin_refusal(request, state)
    if refusal is not None:
        return refusal
    try:
        body = await _read_body(request, state.settings.dataset_max_bytes)
        frame = await run_in_threadpool(_parse, body, state.settings.dataset_max_rows)
        dataset_id = body["id"]
        await run_in_threadpool(state.datasets.save, dataset_id, frame, bool(body["replace"]))
    except ClientInputError as exc:
        return JSONResponse(
            {"error": exc.code, "message": exc.message, "location": exc.location}, exc.status
        )
    public = ReferencePublic(id=dataset_id, rows=len(frame), columns=list(frame.columns))
    return JSONResponse(public.model_dump(), 201)


async def _read_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ClientInputError(413, "body_too_large", f"body of {declared} bytes; at most {limit}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ClientInputError(413, "body_too_large", f"body exceeds {limit} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientInputError(400, "malformed_json", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClientInputError(422, "invalid_body", "the body must be a JSON object", "body")
    unknown = sorted(set(data) - set(ReferenceIn.model_fields))
    if unknown:
        raise ClientInputError(422, "unknown_field", f"unknown fields: {unknown}", "body")
    if not isinstance(data.get("id"), str):
        raise ClientInputError(422, "invalid_dataset_id", "'id' (a string) is required", "id")
    validate_id(data["id"])
    if not isinstance(data.get("replace", False), bool):
        raise ClientInputError(422, "invalid_body", "'replace' must be true or false", "replace")
    data.setdefault("replace", False)
    return data


def _parse(body: dict[str, Any], max_rows: int) -> Any:
    rows, csv_text = body.get("rows"), body.get("csv")
    if (rows is None) == (csv_text is None):
        raise ClientInputError(
            422, "invalid_body", "give exactly one of 'rows' (JSON rows) or 'csv' (CSV text)"
        )
    if rows is not None:
        if not isinstance(rows, list):
            raise ClientInputError(422, "invalid_body", "'rows' must be a list of objects", "rows")
        return parse_rows(rows, max_rows)
    if not isinstance(csv_text, str):
        raise ClientInputError(422, "invalid_body", "'csv' must be a string", "csv")
    return parse_csv(csv_text, max_rows)
