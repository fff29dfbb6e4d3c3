"""The validation gate: may a candidate become the canary?

Two kinds of rule, both from :class:`~retrain.settings.RetrainSettings`:

- **absolute floors** on the candidate's held-out metrics (accuracy, ROC AUC, F1 at least
  the floor; expected calibration error at most the ceiling);
- **regression against the champion** on the same data: the candidate's accuracy, ROC
  AUC and F1 may be at most ``gate_max_regression`` below the champion's, on the fixed
  held-out split and, when both were scored on it, on the recent labelled hold-out.

A pure function of the numbers, so every rule is unit-tested without MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from retrain.settings import RetrainSettings

#: Metrics where higher is better, compared against floors and against the champion.
HIGHER_IS_BETTER = ("accuracy", "roc_auc", "f1")


@dataclass(frozen=True)
class GateResult:
    """The verdict and, when it fails, every rule that failed (for the run tag and event)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "all gate rules passed"


def evaluate_gate(
    candidate: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    settings: RetrainSettings,
) -> GateResult:
    """Apply the gate.

    :param candidate: metrics by data set name (``holdout``, optionally ``recent``), each
        ``accuracy``, ``roc_auc``, ``f1``, ``calibration_error``.
    :param champion: the champion's metrics on the same data sets; None: no champion, so
        only the floors apply.
    """
    reasons: list[str] = []
    held_out = candidate.get("holdout", {})
    floors = {
        "accuracy": settings.gate_min_accuracy,
        "roc_auc": settings.gate_min_roc_auc,
        "f1": settings.gate_min_f1,
    }
    for name, floor in floors.items():
        value = held_out.get(name)
        if value is None or not value >= floor:  # NaN fails too
            reasons.append(f"holdout {name} {_fmt(value)} is below the floor {floor:g}")
    ece = held_out.get("calibration_error")
    if ece is None or not ece <= settings.gate_max_calibration_error:
        reasons.append(
            f"holdout calibration_error {_fmt(ece)} is above the ceiling "
            f"{settings.gate_max_calibration_error:g}"
        )
    for data_set, theirs in (champion or {}).items():
        ours = candidate.get(data_set)
        if ours is None:
            continue
        for name in HIGHER_IS_BETTER:
            if not (
                math.isfinite(theirs.get(name, math.nan))
                and math.isfinite(ours.get(name, math.nan))
            ):
                continue
            allowed = theirs[name] - settings.gate_max_regression
            if ours[name] < allowed:
                reasons.append(
                    f"{data_set} {name} {ours[name]:.4f} regresses more than "
                    f"{settings.gate_max_regression:g} from the champion's {theirs[name]:.4f}"
                )
    return GateResult(not reasons, reasons)


def _fmt(value: float | None) -> str:
    return "missing" if value is None or math.isnan(value) else f"{value:.4f}"
