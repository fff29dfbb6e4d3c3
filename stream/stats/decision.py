"""The decision rule: when is a feature drifted, and the window's ``drift_score``.

A feature is **drifted** when both hold:

1. its test is significant after Benjamini-Hochberg across all features evaluated in
   the window: ``q <= alpha`` (KS for numeric, chi-square for categorical features);
2. its effect size reaches the floor: normalised Wasserstein ``>= effect_floor_numeric``
   (numeric), Jensen-Shannon distance ``>= effect_floor_categorical`` (categorical).

``drift_score`` is the importance-weighted share of evaluated features that are drifted,
in [0, 1]. Under no drift it stays 0 at any window size (BH bounds the chance of any
false flag near ``alpha``; the floor stops huge windows flagging trivia); under drift it
converges to the weight of the features that really moved by more than the floor. So
"drift score above 0.8" reads "at least 80 % of the model's input, weighted by
importance, moved materially and provably".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

if TYPE_CHECKING:
    from stream.settings import DriftStatsSettings


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the decision (defaults from :class:`DriftStatsSettings`)."""

    alpha: float = 0.01
    effect_floor_numeric: float = 0.1
    effect_floor_categorical: float = 0.05
    score_threshold: float = 0.0
    critical_score: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        for name in ("score_threshold", "critical_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.effect_floor_numeric < 0 or self.effect_floor_categorical < 0:
            raise ValueError("effect floors must be >= 0")

    @classmethod
    def from_settings(cls, settings: DriftStatsSettings) -> DecisionRule:
        """The rule the settings describe (before any per-model calibration)."""
        return cls(
            alpha=settings.alpha,
            effect_floor_numeric=settings.effect_floor_numeric,
            effect_floor_categorical=settings.effect_floor_categorical,
            score_threshold=settings.score_threshold,
            critical_score=settings.critical_score,
        )

    def with_alpha(self, alpha: float) -> DecisionRule:
        """The same rule at another significance level (what calibration changes)."""
        return replace(self, alpha=alpha)

    def thresholds(self) -> dict[str, float]:
        """The thresholds by name, as DriftScore's ``thresholds`` map carries them."""
        return {
            "alpha": self.alpha,
            "effect_floor_numeric": self.effect_floor_numeric,
            "effect_floor_categorical": self.effect_floor_categorical,
            "score_threshold": self.score_threshold,
            "critical_score": self.critical_score,
        }


def benjamini_hochberg(p_values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """BH-adjusted p-values (q-values) by scipy; an empty input gives an empty output."""
    if p_values.size == 0:
        return np.asarray(p_values, dtype=float)
    return np.asarray(sps.false_discovery_control(p_values, method="bh"), dtype=float)


def drifted(
    q_values: npt.NDArray[np.float64],
    effects: npt.NDArray[np.float64],
    floors: npt.NDArray[np.float64],
    alpha: float,
) -> npt.NDArray[np.bool_]:
    """Significant after BH and at least as large as the effect floor."""
    return np.asarray((q_values <= alpha) & (effects >= floors), dtype=bool)


def drift_score(flags: npt.NDArray[np.bool_], weights: npt.NDArray[np.float64]) -> float:
    """Importance-weighted share of drifted features (0 when nothing was evaluated)."""
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    return float(min(1.0, max(0.0, float((weights * flags).sum()) / total)))


def critical_alpha(
    q_values: npt.NDArray[np.float64],
    effects: npt.NDArray[np.float64],
    floors: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    score_threshold: float,
) -> float:
    """Smallest ``alpha`` at which this window's drift_score would exceed the threshold.

    ``drift_score`` grows with ``alpha`` (more q-values pass); calibration collects this
    value over windows drawn from the reference and picks ``alpha`` as its quantile at
    the target false-alarm rate. ``inf`` when no ``alpha`` would flag the window.
    """
    total = float(weights.sum())
    eligible = effects >= floors
    if total <= 0 or not eligible.any():
        return float("inf")
    order = np.argsort(q_values[eligible], kind="stable")
    share = np.cumsum(weights[eligible][order]) / total
    above = np.nonzero(share > score_threshold)[0]
    return float(q_values[eligible][order][above[0]]) if above.size else float("inf")
