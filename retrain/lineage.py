"""Lineage of a training set: the exact Kafka offset ranges (and rules) it was built from.

Recorded with every retrain run (MLflow params ``lineage.*`` and the artifact
``training_set.json``), so ``driftline retrain --replay RUN_ID`` rebuilds the identical
training set from the same records: the ranges fix *which* records, the rules (window,
model, hold-out share, row cap) fix what is kept of them.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

#: Name of the lineage artifact in each retrain run.
LINEAGE_ARTIFACT: Final = "training_set.json"


class OffsetRange(BaseModel):
    """Records ``start`` (inclusive) to ``end`` (exclusive) of one topic partition."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)

    def describe(self) -> str:
        """``topic[partition]:start-end`` (end exclusive), for params and logs."""
        return f"{self.topic}[{self.partition}]:{self.start}-{self.end}"


class TrainingSetLineage(BaseModel):
    """Everything needed to rebuild a training set exactly."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    reference: str = Field(
        description="The reference training data: the fixed split of schemas.breast_cancer."
    )
    window_start_ms: int = Field(description="InferenceEvents with event_time >= this ...")
    window_end_ms: int = Field(description="... and <= this are candidates for the join.")
    inference: list[OffsetRange] = Field(default_factory=list)
    feedback: list[OffsetRange] = Field(default_factory=list)
    max_recent_rows: int
    recent_holdout_fraction: float
    #: Evidence that triggered the request (e.g. the drift window's offset ranges).
    trigger_evidence: dict[str, str] = Field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """MLflow params (each value at most 6000 characters, MLflow's limit, so cut)."""
        return {
            "lineage.reference": self.reference,
            "lineage.window_start_ms": str(self.window_start_ms),
            "lineage.window_end_ms": str(self.window_end_ms),
            "lineage.inference_ranges": _joined(self.inference),
            "lineage.feedback_ranges": _joined(self.feedback),
            "lineage.max_recent_rows": str(self.max_recent_rows),
            "lineage.recent_holdout_fraction": str(self.recent_holdout_fraction),
        }


def _joined(ranges: list[OffsetRange]) -> str:
    text = ",".join(r.describe() for r in ranges) or "none"
    return text if len(text) <= 6000 else text[:5980] + "...(see artifact)"
