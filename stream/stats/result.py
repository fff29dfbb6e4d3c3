"""One result shape for every drift answer: ``meta`` plus ``data``.

Like alibi-detect's ``concept_drift_dict``, a result is ``{"meta": ..., "data":
{is_drift, test_stat, threshold, p_val, ...}}``, built only by the factories
:func:`feature_result` and :func:`window_result`. The same pydantic models are what
serving's ``POST /drift/detect`` returns, what the HTML report renders, and what
:meth:`WindowDrift.drift_score_fields` turns into a DriftScore record.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESULT_VERSION = "1"

FeatureKind = Literal["numeric", "categorical", "prediction_class", "probability"]

#: The statistic each kind compares with its effect floor (``test_stat``).
EFFECT_STATISTIC: dict[str, str] = {
    "numeric": "wasserstein_norm",
    "probability": "wasserstein_norm",
    "categorical": "js",
    "prediction_class": "js",
}
#: The test each kind takes its p-value from.
TEST: dict[str, str] = {
    "numeric": "ks",
    "probability": "ks",
    "categorical": "chi2",
    "prediction_class": "chi2",
}


class ResultMeta(BaseModel):
    """What was compared, how, against which reference."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Feature name, or 'window' for the whole window.")
    kind: FeatureKind | Literal["window"]
    method: str = Field(description="e.g. 'ks+wasserstein_norm', 'chi2+js', 'bh_share'.")
    reference_id: str
    version: str = RESULT_VERSION


class FeatureData(BaseModel):
    """Decision and statistics of one feature in one window."""

    model_config = ConfigDict(frozen=True)

    is_drift: bool
    test_stat: float | None = Field(description="The effect size compared with threshold.")
    threshold: float = Field(description="The effect-size floor.")
    p_val: float | None = Field(description="Raw p-value of the feature's test.")
    q_val: float | None = Field(description="Benjamini-Hochberg adjusted p-value.")
    alpha: float
    evaluated: bool = Field(description="False when the window had no value of the feature.")
    sample_size: int
    reference_size: int
    missing: int
    statistics: dict[str, float] = Field(
        description="Every statistic computed: psi, ks, ks_p_value, js, wasserstein, "
        "wasserstein_norm (numeric); chi2, chi2_p_value, js (categorical)."
    )


class FeatureDrift(BaseModel):
    """``meta`` + ``data`` of one feature."""

    model_config = ConfigDict(frozen=True)

    meta: ResultMeta
    data: FeatureData


class WindowData(BaseModel):
    """Decision and per-feature results of one window."""

    model_config = ConfigDict(frozen=True)

    is_drift: bool = Field(description="drift_score > threshold.")
    test_stat: float = Field(description="The drift_score.")
    threshold: float = Field(description="The score threshold of a flagged window.")
    p_val: float = Field(
        description="Smallest BH q-value of the window (Simes' test of 'no feature moved')."
    )
    drift_score: float
    critical: bool = Field(description="is_drift and drift_score >= critical_score.")
    critical_score: float
    alpha: float
    event_count: int
    features: list[FeatureDrift]
    prediction: list[FeatureDrift] = Field(default_factory=list)
    prediction_drift: float | None = Field(
        default=None, description="Largest JS distance of the prediction outputs."
    )
    prediction_is_drift: bool = False
    missing_features: list[str] = Field(
        default_factory=list, description="In the reference, absent from the current data."
    )
    unknown_features: list[str] = Field(
        default_factory=list, description="In the current data, not in the reference."
    )
    thresholds: dict[str, float] = Field(default_factory=dict)


class WindowDrift(BaseModel):
    """``meta`` + ``data`` of one window: what every caller of the library gets."""

    model_config = ConfigDict(frozen=True)

    meta: ResultMeta
    data: WindowData

    def drift_score_fields(self) -> dict[str, Any]:
        """The DriftScore record's fields this result fills (schemas/avro/drift_score.avsc).

        The caller adds model_name, model_version, window_start, window_end and
        late_event_count. Features that were not evaluated are left out (no value).
        """
        return {
            "event_count": self.data.event_count,
            "drift_score": self.data.drift_score,
            "drifted": self.data.is_drift,
            "features": [
                {
                    "feature": f.meta.name,
                    "statistic": f.data.test_stat,
                    "p_value": f.data.p_val,
                    "threshold": f.data.threshold,
                    "drifted": f.data.is_drift,
                    "sample_size": f.data.sample_size,
                }
                for f in self.data.features
                if f.data.evaluated
            ],
            "prediction_drift": self.data.prediction_drift,
            "reference_id": self.meta.reference_id,
            "method": self.meta.method,
            "thresholds": dict(self.data.thresholds),
        }


def feature_result(
    *,
    name: str,
    kind: FeatureKind,
    reference_id: str,
    is_drift: bool,
    effect: float | None,
    floor: float,
    p_value: float | None,
    q_value: float | None,
    alpha: float,
    sample_size: int,
    reference_size: int,
    missing: int,
    statistics: dict[str, float],
) -> FeatureDrift:
    """Build one feature's result (the only way one is made)."""
    return FeatureDrift(
        meta=ResultMeta(
            name=name,
            kind=kind,
            method=f"{TEST[kind]}+{EFFECT_STATISTIC[kind]}",
            reference_id=reference_id,
        ),
        data=FeatureData(
            is_drift=is_drift,
            test_stat=effect,
            threshold=floor,
            p_val=p_value,
            q_val=q_value,
            alpha=alpha,
            evaluated=sample_size > 0,
            sample_size=sample_size,
            reference_size=reference_size,
            missing=missing,
            statistics=statistics,
        ),
    )


def window_result(
    *,
    reference_id: str,
    drift_score: float,
    threshold: float,
    critical_score: float,
    p_value: float,
    alpha: float,
    event_count: int,
    features: list[FeatureDrift],
    prediction: list[FeatureDrift],
    missing_features: list[str],
    unknown_features: list[str],
    thresholds: dict[str, float],
) -> WindowDrift:
    """Build one window's result (the only way one is made)."""
    prediction_js = [
        f.data.statistics["js"]
        for f in prediction
        if f.data.evaluated and "js" in f.data.statistics
    ]
    return WindowDrift(
        meta=ResultMeta(name="window", kind="window", method="bh_share", reference_id=reference_id),
        data=WindowData(
            is_drift=drift_score > threshold,
            test_stat=drift_score,
            threshold=threshold,
            p_val=p_value,
            drift_score=drift_score,
            critical=drift_score > threshold and drift_score >= critical_score,
            critical_score=critical_score,
            alpha=alpha,
            event_count=event_count,
            features=features,
            prediction=prediction,
            prediction_drift=max(prediction_js) if prediction_js else None,
            prediction_is_drift=any(f.data.is_drift for f in prediction),
            missing_features=missing_features,
            unknown_features=unknown_features,
            thresholds=thresholds,
        ),
    )
