"""Calibrate a model's thresholds from its reference data: the bootstrap null.

Windows of the live size are drawn (with replacement) from the reference rows: they
are what "no drift" looks like at that size, with this model's feature correlations,
ties and binning. For each draw we record every statistic and the smallest
significance level that would have flagged it (:func:`critical_alpha`). The calibrated
``alpha`` is the largest level at which at most ``target_rate`` of the null windows are
flagged, capped by the configured ``alpha`` (calibration only ever makes the rule
stricter). At that level we count how often null windows are flagged and reach the
critical score, with Clopper-Pearson upper bounds, and turn those rates into expected
false alerts per week at a given traffic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats as sps

from stream.stats.decision import DecisionRule, critical_alpha, drift_score
from stream.stats.layout import to_profile_columns
from stream.stats.profile import ReferenceProfile
from stream.stats.scoring import decide, window_statistics
from stream.stats.sketch import WindowSketch

MINUTES_PER_WEEK = 7 * 24 * 60
#: Confidence of the upper bounds on null rates.
UPPER_BOUND_CONFIDENCE = 0.95
#: Null quantiles stored per feature and statistic, for tuning effect floors.
NULL_QUANTILES = (0.5, 0.95, 0.99)


class Calibration(BaseModel):
    """A model's calibrated rule and its measured false-alarm rates (JSON-able)."""

    model_config = ConfigDict(frozen=True)

    reference_id: str
    window_size: int
    draws: int
    seed: int
    target_false_alarm_rate: float
    alpha: float = Field(description="Calibrated BH level (<= the configured alpha).")
    configured_alpha: float
    effect_floor_numeric: float
    effect_floor_categorical: float
    score_threshold: float
    critical_score: float
    flag_rate: float = Field(description="Share of null windows flagged at the calibrated alpha.")
    flag_rate_upper: float = Field(description="95 % upper bound of flag_rate.")
    critical_rate: float = Field(description="Share of null windows at the critical score.")
    critical_rate_upper: float = Field(description="95 % upper bound of critical_rate.")
    score_quantiles: dict[str, float]
    null_quantiles: dict[str, dict[str, float]] = Field(
        description="Per feature: '<statistic>_q<percent>' of its null distribution."
    )

    def rule(self) -> DecisionRule:
        """The decision rule this calibration sets."""
        return DecisionRule(
            alpha=self.alpha,
            effect_floor_numeric=self.effect_floor_numeric,
            effect_floor_categorical=self.effect_floor_categorical,
            score_threshold=self.score_threshold,
            critical_score=self.critical_score,
        )

    def expected_false_alerts_per_week(
        self,
        events_per_minute: float,
        *,
        level: str = "critical",
        k: int = 1,
        n: int = 1,
        upper: bool = True,
    ) -> float:
        """Expected alerts per week on no-drift traffic.

        Windows per week = ``events_per_minute * 10080 / window_size`` (the calibrated
        window size). An alert needs ``k`` of ``n`` windows at ``level`` ("flag" or
        "critical"); treating windows as independent, the chance a given window
        completes one is at most ``P(Binomial(n, p) >= k)``. ``upper`` uses the 95 %
        upper bound of ``p`` (honest when no null window was flagged).
        """
        if level not in ("flag", "critical"):
            raise ValueError(f"level must be 'flag' or 'critical', got {level!r}")
        if level == "flag":
            p = self.flag_rate_upper if upper else self.flag_rate
        else:
            p = self.critical_rate_upper if upper else self.critical_rate
        windows = events_per_minute * MINUTES_PER_WEEK / self.window_size
        return float(windows * sps.binom.sf(k - 1, n, p))


def calibrate(
    profile: ReferenceProfile,
    data: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    window_size: int,
    predicted: npt.ArrayLike | None = None,
    probability: npt.ArrayLike | None = None,
    rule: DecisionRule | None = None,
    target_rate: float = 0.01,
    draws: int = 400,
    seed: int = 0,
) -> Calibration:
    """Bootstrap ``draws`` windows of ``window_size`` reference rows and calibrate.

    ``data`` holds the reference rows (the training data the profile was built from).
    """
    if window_size < 1 or draws < 1:
        raise ValueError("window_size and draws must be >= 1")
    if not 0.0 < target_rate < 1.0:
        raise ValueError(f"target_rate must be in (0, 1), got {target_rate}")
    rule = rule or DecisionRule()
    columns = to_profile_columns(profile, data, feature_names)
    pred = None if predicted is None else np.asarray(predicted, dtype=object)
    prob = None if probability is None else np.asarray(probability, dtype=float)
    rng = np.random.default_rng(seed)
    rows = columns.numeric.shape[0]
    alphas = np.empty(draws)
    q_draws: list[npt.NDArray[np.float64]] = []
    flags_inputs: list[tuple[npt.NDArray[np.float64], ...]] = []
    per_stat: dict[str, list[npt.NDArray[np.float64]]] = {}
    names: list[str] = []
    for i in range(draws):
        pick = rng.integers(0, rows, size=window_size)
        sketch = WindowSketch(profile).update(
            columns.numeric[pick],
            categorical=columns.categorical[pick],
            predicted=None if pred is None else pred[pick],
            probability=None if prob is None else prob[pick],
        )
        stats = window_statistics(profile, sketch, rule)
        q, _, evaluated = decide(stats, "features", rule.alpha)
        names = stats.names("features")
        effects, floors = stats.concat("effect"), stats.concat("floor")
        weights = profile.weights(names) * evaluated
        alphas[i] = critical_alpha(
            np.where(evaluated, q, np.inf), effects, floors, weights, rule.score_threshold
        )
        q_draws.append(q)
        flags_inputs.append((effects, floors, weights))
        for group in stats.features:
            for stat, values in group.statistics.items():
                per_stat.setdefault(stat, []).append(_spread(stats.names(), group.names, values))
    alpha = _alpha_for_rate(alphas, target_rate, rule.alpha)
    scores = np.array(
        [
            drift_score((q <= alpha) & (e >= f), w)
            for q, (e, f, w) in zip(q_draws, flags_inputs, strict=True)
        ]
    )
    flagged = int((scores > rule.score_threshold).sum())
    critical = int(((scores > rule.score_threshold) & (scores >= rule.critical_score)).sum())
    return Calibration(
        reference_id=profile.reference_id,
        window_size=window_size,
        draws=draws,
        seed=seed,
        target_false_alarm_rate=target_rate,
        alpha=alpha,
        configured_alpha=rule.alpha,
        effect_floor_numeric=rule.effect_floor_numeric,
        effect_floor_categorical=rule.effect_floor_categorical,
        score_threshold=rule.score_threshold,
        critical_score=rule.critical_score,
        flag_rate=flagged / draws,
        flag_rate_upper=_upper_bound(flagged, draws),
        critical_rate=critical / draws,
        critical_rate_upper=_upper_bound(critical, draws),
        score_quantiles={
            f"q{round(100 * q)}": float(np.quantile(scores, q)) for q in NULL_QUANTILES
        }
        | {"max": float(scores.max())},
        null_quantiles=_null_quantiles(names, per_stat),
    )


def _alpha_for_rate(alphas: npt.NDArray[np.float64], target: float, cap: float) -> float:
    """Largest alpha flagging at most ``target`` of the draws, at most ``cap``.

    A draw is flagged at level a when its critical alpha is <= a; with the critical
    alphas sorted, allowing j = floor(target * draws) flags puts a just below the
    (j+1)-th smallest one.
    """
    ordered = np.sort(alphas)
    allowed = int(np.floor(target * ordered.size))
    if allowed >= ordered.size:
        return cap
    bound = float(ordered[allowed])
    return float(min(cap, np.nextafter(bound, 0.0))) if np.isfinite(bound) else cap


def _upper_bound(successes: int, trials: int) -> float:
    """One-sided Clopper-Pearson upper bound of a binomial rate."""
    if successes >= trials:
        return 1.0
    return float(sps.beta.ppf(UPPER_BOUND_CONFIDENCE, successes + 1, trials - successes))


def _spread(
    all_names: list[str], group_names: list[str], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """A group's values placed in the all-features order (NaN elsewhere)."""
    out = np.full(len(all_names), np.nan)
    index = {n: i for i, n in enumerate(all_names)}
    for name, value in zip(group_names, values, strict=True):
        out[index[name]] = value
    return out


def _null_quantiles(
    names: list[str], per_stat: dict[str, list[npt.NDArray[np.float64]]]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for stat, draws in per_stat.items():
        matrix = np.vstack(draws)
        for j, name in enumerate(names):
            column = matrix[:, j][np.isfinite(matrix[:, j])]
            if column.size:
                for q in NULL_QUANTILES:
                    out[name][f"{stat}_q{round(100 * q)}"] = float(np.quantile(column, q))
    return out
