"""Route dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from serving.auth import bearer_refusal
from serving.state import ServingState


def get_state(request: Request) -> ServingState:
    """The app's :class:`ServingState` (set by the lifespan)."""
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


def admin_refusal(request: Request, state: ServingState) -> JSONResponse | None:
    """The 401/403 answer for an admin action outside ``/admin`` without a valid bearer
    token (the same check as the ``/admin`` middleware); None when the token is good."""
    refusal = bearer_refusal(
        request.headers.get("authorization", "").encode() or None,
        state.config.admin.token_list(),
    )
    if refusal is None:
        return None
    status, code, message = refusal
    headers = {"WWW-Authenticate": 'Bearer realm="driftline-admin"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message}, status, headers=headers)
