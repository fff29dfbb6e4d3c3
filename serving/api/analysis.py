"""``/analysis/{model}/canary``: the canary controller's verdict for progressive-delivery tools
(and ``/analysis/{model}/shadow``: its verdict on the model's shadow, same rules of answer).

The verdict is the controller's own (it stores every analysis in Redis,
:mod:`schemas.canary_analysis`); serving only reads it, so Argo Rollouts, Flagger, the
controller and ``GET /models`` can never disagree about one canary.

- ``GET /analysis/{model}/canary`` always answers 200 with the verdict in the body
  (``verdict``: ``pass``, ``fail``, ``inconclusive``): Argo Rollouts' web provider reads
  it through ``jsonPath`` and treats a non-2xx answer as a measurement *error*, not a
  failure.
- ``GET|POST /analysis/{model}/canary/gate`` answers the same body with 200 when the
  verdict passes the gate and 412 when not, for Flagger's webhooks (which POST and look
  only at the status). ``?allow_inconclusive=true`` lets ``inconclusive`` through, for a
  ``rollout`` hook that should stop only a failing canary.

No token: the answer is read-only evidence (versions, rates, latencies, thresholds) and
the tools calling it run inside the cluster without the admin token (docs/decisions.md).
"""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from schemas.canary_analysis import CanaryAnalysis, CanaryAnalysisStore
from schemas.rollout_state import RolloutStore
from schemas.shadow_analysis import ShadowAnalysis, ShadowAnalysisStore
from serving.api.deps import StateDep
from serving.state import ServingState

router = APIRouter(prefix="/analysis", tags=["analysis"])

_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "unknown_model, or no_canary (none running and none analysed)"},
    503: {"description": "redis_unavailable: rollout state cannot be read"},
}


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _client(state: ServingState, model: str, kind: str) -> redis.Redis | JSONResponse:
    """The Redis client to read ``model``'s analysis from, or the answer refusing it:
    404 for a model not served here, 503 without Redis."""
    known = [state.settings.model_name]
    if model not in known:
        return _error(
            404, "unknown_model", f"model {model!r} is not served here; known models: {known}",
            known_models=known,
        )  # fmt: skip
    if state.rollout_store is None:
        return _error(
            503, "redis_unavailable", f"{kind} analysis needs Redis (DRIFTLINE_REDIS_URL)"
        )
    return state.rollout_store.client


def _current(state: ServingState, model: str) -> CanaryAnalysis | JSONResponse:
    """The analysis to answer for ``model``, or the error answer (404/503)."""
    client = _client(state, model, "canary")
    if isinstance(client, JSONResponse):
        return client
    try:
        rollout = RolloutStore(client).read(model)
        stored = CanaryAnalysisStore(client).read(model)
    except redis.RedisError as exc:
        return _error(503, "redis_unavailable", f"could not read the canary analysis: {exc}")
    active = rollout is not None and rollout.active
    live = rollout.canary_version if rollout is not None and active else None
    if stored is not None and (not active or stored.canary_version == live):
        return stored.model_copy(update={"canary_active": active})
    if rollout is None or not active:
        return _error(
            404, "no_canary",
            f"{model!r} has no canary running and no canary analysis recorded",
        )  # fmt: skip
    return CanaryAnalysis(
        model_name=model,
        verdict="inconclusive",
        reason=f"canary version {live} at share {rollout.canary_share:g}: "
        "no window judged yet (the canary controller judges closed SLO windows)",
        canary_version=live,
        step=rollout.canary_share,
    )


@router.get("/{model}/canary", response_model=CanaryAnalysis, responses=_RESPONSES)
async def canary_analysis(model: str, state: StateDep) -> CanaryAnalysis | JSONResponse:
    """The latest verdict on ``model``'s canary and its evidence; 200 for every verdict."""
    return await run_in_threadpool(_current, state, model)


_GATE_RESPONSES: dict[int | str, dict[str, str]] = {
    **_RESPONSES,
    412: {"description": "the verdict does not pass the gate"},
}


# Two decorators with their own operation ids, not ``api_route(methods=[GET, POST])``:
# that one registers one operation id for both methods and the OpenAPI document (which
# clients generate code from) would carry a duplicate.
@router.get("/{model}/canary/gate", responses=_GATE_RESPONSES, operation_id="canary_gate_get")
@router.post("/{model}/canary/gate", responses=_GATE_RESPONSES, operation_id="canary_gate_post")
async def canary_gate(
    model: str, state: StateDep, allow_inconclusive: bool = False
) -> JSONResponse:
    """200 when the verdict is ``pass`` (or ``inconclusive`` if allowed), else 412."""
    answer = await run_in_threadpool(_current, state, model)
    if isinstance(answer, JSONResponse):
        return answer
    passes = answer.verdict == "pass" or (allow_inconclusive and answer.verdict == "inconclusive")
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if passes else 412)


def _shadow_current(state: ServingState, model: str) -> ShadowAnalysis | JSONResponse:
    """The shadow analysis to answer for ``model``, or the error answer (404/503)."""
    client = _client(state, model, "shadow")
    if isinstance(client, JSONResponse):
        return client
    try:
        rollout = RolloutStore(client).read(model)
        stored = ShadowAnalysisStore(client).read(model)
    except redis.RedisError as exc:
        return _error(503, "redis_unavailable", f"could not read the shadow analysis: {exc}")
    live = rollout.shadow_version if rollout is not None else None
    if stored is not None and (live is None or stored.shadow_version == live):
        return stored.model_copy(update={"shadow_active": live is not None})
    if live is None:
        return _error(
            404, "no_shadow", f"{model!r} has no shadow set and no shadow analysis recorded"
        )
    return ShadowAnalysis(
        model_name=model,
        verdict="inconclusive",
        reason=f"shadow version {live}: no window judged yet (the canary controller judges "
        "the ShadowComparisons of driftline shadow run)",
        shadow_version=live,
    )


@router.get(
    "/{model}/shadow",
    response_model=ShadowAnalysis,
    responses={
        404: {"description": "unknown_model, or no_shadow (none set and none analysed)"},
        503: {"description": "redis_unavailable: rollout state cannot be read"},
    },
)
async def shadow_analysis(model: str, state: StateDep) -> ShadowAnalysis | JSONResponse:
    """The latest verdict on ``model``'s shadow and its evidence; 200 for every verdict."""
    return await run_in_threadpool(_shadow_current, state, model)
