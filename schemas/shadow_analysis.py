"""The latest shadow analysis per model, in Redis: what serving's
``GET /analysis/{model}/shadow`` answers.

The same arrangement as :mod:`schemas.canary_analysis`: the canary controller judges each
ShadowComparison (:func:`retrain.shadow_analysis.judge_shadow`) and writes the verdict
here; serving, which never imports retrain, only reads it. Key
``driftline:shadow:analysis:<model>``, one JSON string replaced by every analysis.
"""

from __future__ import annotations

import logging
from typing import Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from schemas.canary_analysis import Verdict

log = logging.getLogger(__name__)

KEY_PREFIX = "driftline:shadow:analysis:"

ShadowWindowJudgement = Literal["pass", "below_threshold", "too_slow", "below_floor"]


def shadow_analysis_key(model_name: str) -> str:
    """The Redis key holding ``model_name``'s latest shadow analysis."""
    return f"{KEY_PREFIX}{model_name}"


class JudgedShadowWindow(BaseModel):
    """One ShadowComparison window that counted as evidence, and how it was judged."""

    window_start: int = Field(description="Epoch ms (event time of the served answers).")
    judgement: ShadowWindowJudgement
    pair_count: int
    agreement_rate: float
    champion_latency_p99_ms: float
    shadow_latency_p99_ms: float
    champion_version: str | None = None


class ShadowAnalysis(BaseModel):
    """A verdict on one shadow, with the windows it was decided from."""

    model_name: str
    verdict: Verdict
    reason: str = Field(description="Why, in one line.")
    shadow_version: str | None
    windows_required: int = Field(default=0, description="Windows in a row a verdict needs.")
    windows_passed: int = 0
    windows: list[JudgedShadowWindow] = Field(
        default_factory=list, description="The newest evidence windows, oldest first."
    )
    skipped_windows: int = Field(
        default=0, description="Windows of this shadow with too few pairs (not evidence)."
    )
    thresholds: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, float] = Field(default_factory=dict)
    auto: bool = Field(
        default=False,
        description="Whether the controller acts on verdicts (DRIFTLINE_CANARY_SHADOW_AUTO).",
    )
    action: str | None = Field(
        default=None,
        description="What the controller did on this verdict: promoted, stopped; None when "
        "it waits for more windows or does not act (auto false).",
    )
    analysed_at_ms: int | None = Field(default=None, description="Epoch ms; None: none yet.")
    shadow_active: bool = Field(
        default=True, description="Whether the rollout state still has this shadow."
    )


class ShadowAnalysisStore:
    """Write (controller) and read (serving, ``driftline status``) each model's analysis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def write(self, analysis: ShadowAnalysis) -> None:
        self.client.set(shadow_analysis_key(analysis.model_name), analysis.model_dump_json())

    def read(self, model_name: str) -> ShadowAnalysis | None:
        """The latest analysis, or None (none yet, or a record this version cannot read)."""
        raw = self.client.get(shadow_analysis_key(model_name))
        if raw is None:
            return None
        try:
            return ShadowAnalysis.model_validate_json(raw)
        except ValidationError as exc:
            log.error("unreadable shadow analysis of %s in Redis: %s", model_name, exc)
            return None
