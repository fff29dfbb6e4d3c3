"""Route dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.state import ServingState


def get_state(request: Request) -> ServingState:
    """The app's :class:`ServingState` (set by the lifespan)."""
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]
