"""The canary controller's latest analysis per model, in Redis: what serving's
``GET /analysis/{model}/canary`` answers.

The verdict must be the controller's own (one analysis, :func:`retrain.canary.analyse`),
and serving must never import retrain (DESIGN.md), so the controller writes each analysis
it makes here and serving only reads it. The record is a pydantic model: the controller
validates what it writes, serving validates what it reads, and the HTTP answer has the
same shape as what is stored. Key ``driftline:canary:analysis:<model>``, a JSON string
replaced by every analysis (no history: the DeploymentEvents are the history).
"""

from __future__ import annotations

import logging
from typing import Literal

import redis
from pydantic import BaseModel, Field, ValidationError

log = logging.getLogger(__name__)

KEY_PREFIX = "driftline:canary:analysis:"

Verdict = Literal["pass", "fail", "inconclusive"]
#: How one window pair was judged: ``too_few_requests`` windows are not evidence.
WindowJudgement = Literal["pass", "fail", "too_few_requests"]


def analysis_key(model_name: str) -> str:
    """The Redis key holding ``model_name``'s latest canary analysis."""
    return f"{KEY_PREFIX}{model_name}"


class VariantWindow(BaseModel):
    """One variant's numbers in one window (from its SloWindow)."""

    requests: int
    error_rate: float
    latency_p99_ms: float


class JudgedWindow(BaseModel):
    """One canary/baseline window pair and how the analysis judged it."""

    window_start: int = Field(description="Epoch ms; the pair's common window start.")
    judgement: WindowJudgement
    canary: VariantWindow
    baseline: VariantWindow


class CanaryAnalysis(BaseModel):
    """A verdict on one canary step, with everything it was decided from."""

    model_name: str
    verdict: Verdict
    reason: str = Field(description="Why, in one line (every failed rule, or the count).")
    canary_version: str | None
    step: float = Field(description="The canary share of the step judged (0..1).")
    steps: list[float] = Field(default_factory=list, description="Every step's share, in order.")
    windows_required: int = Field(default=0, description="Passing windows a step needs.")
    windows_passed: int = 0
    windows: list[JudgedWindow] = Field(default_factory=list, description="Oldest first.")
    thresholds: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, float] = Field(
        default_factory=dict,
        description="The verdict's own numbers (the DeploymentEvent's evidence), e.g. the "
        "deciding window's rates and each variant's pooled accuracy.",
    )
    action: str | None = Field(
        default=None,
        description="What the controller did on this verdict: canary_step, promoted, "
        "rolled_back; None while it waits for more windows.",
    )
    analysed_at_ms: int | None = Field(default=None, description="Epoch ms; None: none yet.")
    canary_active: bool = Field(
        default=True, description="Whether the rollout state still has this canary live."
    )


class CanaryAnalysisStore:
    """Write (controller) and read (serving) the latest analysis of each model."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def write(self, analysis: CanaryAnalysis) -> None:
        self.client.set(analysis_key(analysis.model_name), analysis.model_dump_json())

    def read(self, model_name: str) -> CanaryAnalysis | None:
        """The latest analysis, or None (none yet, or a record this version cannot read)."""
        raw = self.client.get(analysis_key(model_name))
        if raw is None:
            return None
        try:
            return CanaryAnalysis.model_validate_json(raw)
        except ValidationError as exc:
            log.error("unreadable canary analysis of %s in Redis: %s", model_name, exc)
            return None
