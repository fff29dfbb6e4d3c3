"""Score a window sketch against its reference profile: statistics, decision, result.

:func:`window_statistics` computes every statistic of every feature as numpy arrays
(what calibration needs, thousands of times); :func:`score_window` applies the decision
rule and builds the one result shape (:mod:`stream.stats.result`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.stats import statistics as st
from stream.stats.decision import DecisionRule, benjamini_hochberg, drift_score, drifted
from stream.stats.exceptions import SketchMismatchError
from stream.stats.grid import CategoryTable, NumericGrid
from stream.stats.profile import ReferenceProfile
from stream.stats.result import (
    FeatureDrift,
    FeatureKind,
    WindowDrift,
    feature_result,
    window_result,
)
from stream.stats.sketch import CategoryCounts, NumericCounts, WindowSketch

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureStats:
    """Statistics of a group of features (numeric or categorical), one entry each."""

    names: list[str]
    kind: FeatureKind
    sample_size: npt.NDArray[np.int64]
    reference_size: npt.NDArray[np.int64]
    missing: npt.NDArray[np.int64]
    p_value: FloatArray
    effect: FloatArray
    floor: FloatArray
    statistics: dict[str, FloatArray]

    @property
    def evaluated(self) -> npt.NDArray[np.bool_]:
        """Features with at least one value in the window."""
        return np.asarray(self.sample_size > 0, dtype=bool)


def numeric_stats(
    grid: NumericGrid, counts: NumericCounts, floor: float, kind: FeatureKind
) -> FeatureStats:
    """PSI, KS, JS and Wasserstein of numeric features on their grid."""
    ref, cur = grid.ref_counts, counts.counts
    d, p = st.ks(ref, cur)
    w = st.wasserstein(ref, cur, grid.locations)
    w_norm = w / grid.scale
    return FeatureStats(
        names=grid.names,
        kind=kind,
        sample_size=cur.sum(axis=1),
        reference_size=ref.sum(axis=1),
        missing=counts.missing.copy(),
        p_value=p,
        effect=w_norm,
        floor=np.full(len(grid.names), floor),
        statistics={
            "psi": st.psi(ref, cur, grid.valid),
            "ks": d,
            "ks_p_value": p,
            "js": st.js_distance(ref, cur),
            "wasserstein": w,
            "wasserstein_norm": w_norm,
        },
    )


def categorical_stats(
    table: CategoryTable, counts: CategoryCounts, floor: float, kind: FeatureKind
) -> FeatureStats:
    """Chi-square and JS of categorical features (unseen labels in their own slot)."""
    k = len(table.names)
    chi2, p, js = np.zeros(k), np.ones(k), np.zeros(k)
    for j in range(k):
        ref, cur = table.ref_counts[j], counts.counts[j]
        chi2[j], p[j] = st.chi_square(ref, cur)
        js[j] = float(st.js_distance(ref[None, :], cur[None, :])[0])
    return FeatureStats(
        names=table.names,
        kind=kind,
        sample_size=np.array([c.sum() for c in counts.counts], dtype=np.int64),
        reference_size=np.array([c.sum() for c in table.ref_counts], dtype=np.int64),
        missing=counts.missing.copy(),
        p_value=p,
        effect=js,
        floor=np.full(k, floor),
        statistics={"chi2": chi2, "chi2_p_value": p, "js": js},
    )


@dataclass(frozen=True)
class WindowStats:
    """Every statistic of a window, before the decision."""

    features: list[FeatureStats]
    prediction: list[FeatureStats]
    event_count: int

    def concat(self, attr: str, group: str = "features") -> FloatArray:
        """One attribute of every feature of a group, concatenated in order."""
        parts = [np.asarray(getattr(s, attr), dtype=float) for s in getattr(self, group)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def names(self, group: str = "features") -> list[str]:
        """Feature names of a group, in :meth:`concat` order."""
        return [n for s in getattr(self, group) for n in s.names]


def window_statistics(
    profile: ReferenceProfile, sketch: WindowSketch, rule: DecisionRule
) -> WindowStats:
    """All statistics of a sketch against its profile."""
    if sketch.reference_id != profile.reference_id:
        raise SketchMismatchError(
            f"sketch counted on {sketch.reference_id}, profile is {profile.reference_id}"
        )
    features = [
        numeric_stats(profile.numeric_grid, sketch.numeric, rule.effect_floor_numeric, "numeric"),
        categorical_stats(
            profile.category_table,
            sketch.categorical,
            rule.effect_floor_categorical,
            "categorical",
        ),
    ]
    prediction: list[FeatureStats] = []
    if profile.prediction_table is not None and sketch.prediction is not None:
        prediction.append(
            categorical_stats(
                profile.prediction_table,
                sketch.prediction,
                rule.effect_floor_categorical,
                "prediction_class",
            )
        )
    if profile.probability_grid is not None and sketch.probability is not None:
        prediction.append(
            numeric_stats(
                profile.probability_grid,
                sketch.probability,
                rule.effect_floor_numeric,
                "probability",
            )
        )
    return WindowStats(features=features, prediction=prediction, event_count=sketch.event_count)


def decide(
    stats: WindowStats, group: str, alpha: float
) -> tuple[FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """BH q-values (NaN where not evaluated), drift flags and the evaluated mask."""
    evaluated = stats.concat("sample_size", group) > 0
    p = stats.concat("p_value", group)
    q = np.full(p.shape, np.nan)
    q[evaluated] = benjamini_hochberg(p[evaluated])
    flags = np.zeros(p.shape, dtype=bool)
    flags[evaluated] = drifted(
        q[evaluated],
        stats.concat("effect", group)[evaluated],
        stats.concat("floor", group)[evaluated],
        alpha,
    )
    return q, flags, evaluated


def score_window(
    profile: ReferenceProfile,
    sketch: WindowSketch,
    rule: DecisionRule | None = None,
    *,
    missing_features: list[str] | None = None,
    unknown_features: list[str] | None = None,
) -> WindowDrift:
    """Score a window: statistics, BH, effect floors, drift_score, result."""
    rule = rule or DecisionRule()
    stats = window_statistics(profile, sketch, rule)
    q, flags, evaluated = decide(stats, "features", rule.alpha)
    names = stats.names("features")
    weights = profile.weights(names)[evaluated]
    score = drift_score(flags[evaluated], weights)
    p_window = float(np.min(q[evaluated])) if evaluated.any() else 1.0
    pred_q, pred_flags, _ = decide(stats, "prediction", rule.alpha)
    return window_result(
        reference_id=profile.reference_id,
        drift_score=score,
        threshold=rule.score_threshold,
        critical_score=rule.critical_score,
        p_value=p_window,
        alpha=rule.alpha,
        event_count=stats.event_count,
        features=_results(profile, stats.features, q, flags, rule.alpha),
        prediction=_results(profile, stats.prediction, pred_q, pred_flags, rule.alpha),
        missing_features=list(missing_features or []),
        unknown_features=list(unknown_features or []),
        thresholds=rule.thresholds(),
    )


def _results(
    profile: ReferenceProfile,
    groups: list[FeatureStats],
    q: FloatArray,
    flags: npt.NDArray[np.bool_],
    alpha: float,
) -> list[FeatureDrift]:
    out: list[FeatureDrift] = []
    offset = 0
    for group in groups:
        for j, name in enumerate(group.names):
            evaluated = bool(group.sample_size[j] > 0)
            out.append(
                feature_result(
                    name=name,
                    kind=group.kind,
                    reference_id=profile.reference_id,
                    is_drift=bool(flags[offset + j]),
                    effect=float(group.effect[j]) if evaluated else None,
                    floor=float(group.floor[j]),
                    p_value=float(group.p_value[j]) if evaluated else None,
                    q_value=float(q[offset + j]) if evaluated else None,
                    alpha=alpha,
                    sample_size=int(group.sample_size[j]),
                    reference_size=int(group.reference_size[j]),
                    missing=int(group.missing[j]),
                    statistics=(
                        {k: float(v[j]) for k, v in group.statistics.items()} if evaluated else {}
                    ),
                )
            )
        offset += len(group.names)
    return out
