"""detect(), calibration, hysteresis and the result shape, on the breast-cancer data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from schemas.catalog import load_catalog
from schemas.validation import validate
from stream.settings import DriftStatsSettings
from stream.stats import (
    DecisionRule,
    Hysteresis,
    NoSharedFeaturesError,
    ReferenceProfile,
    calibrate,
    detect,
)

DATA = load_breast_cancer()
X: np.ndarray = DATA.data
NAMES: list[str] = list(DATA.feature_names)
PROFILE = ReferenceProfile.build(X, NAMES, predicted=DATA.target, probability=X[:, 0] / 30)


def _window(seed: int, size: int = 500) -> np.ndarray:
    return X[np.random.default_rng(seed).integers(0, len(X), size)].copy()


def test_shift_of_five_features_is_flagged_and_no_drift_is_not() -> None:
    clean = detect(PROFILE, _window(1), NAMES)
    shifted_rows = _window(1)
    shifted_rows[:, 10:15] += X[:, 10:15].std(axis=0)
    shifted = detect(PROFILE, shifted_rows, NAMES)
    assert not clean.data.is_drift and clean.data.drift_score == 0.0
    assert shifted.data.is_drift
    assert {f.meta.name for f in shifted.data.features if f.data.is_drift} == set(NAMES[10:15])
    assert shifted.data.drift_score == pytest.approx(5 / 30)


def test_importances_weight_the_score() -> None:
    weighted = ReferenceProfile.build(X, NAMES, importances=dict.fromkeys(NAMES[10:15], 5.0))
    rows = _window(2)
    rows[:, 10:15] += X[:, 10:15].std(axis=0)
    assert detect(weighted, rows, NAMES).data.drift_score == pytest.approx(25 / 50)


def test_columns_on_one_side_are_reported_not_fatal() -> None:
    rows = np.hstack([_window(3)[:, :20], np.ones((500, 1))])
    result = detect(PROFILE, rows, [*NAMES[:20], "new_feature"])
    assert result.data.missing_features == NAMES[20:]
    assert result.data.unknown_features == ["new_feature"]
    assert sum(f.data.evaluated for f in result.data.features) == 20
    with pytest.raises(NoSharedFeaturesError):
        detect(PROFILE, np.ones((3, 1)), ["other"])


def test_result_is_json_and_fills_a_valid_drift_score_record() -> None:
    result = detect(
        PROFILE, _window(4), NAMES, predicted=DATA.target[:500], probability=X[:500, 0] / 30
    )
    body = json.loads(result.model_dump_json())
    assert set(body) == {"meta", "data"}
    assert {"is_drift", "test_stat", "threshold", "p_val"} <= set(body["data"])
    assert {f.meta.kind for f in result.data.prediction} == {"prediction_class", "probability"}
    record = result.drift_score_fields() | {
        "model_name": "m",
        "model_version": "1",
        "window_start": 0,
        "window_end": 60_000,
        "late_event_count": 0,
    }
    validate("DriftScore", load_catalog().current("DriftScore").raw, record)


def test_prediction_drift_is_seen_when_the_model_output_moves() -> None:
    flipped = 1 - DATA.target[:500]
    flipped[:100] = 0
    result = detect(PROFILE, _window(5), NAMES, predicted=flipped)
    assert result.data.prediction_is_drift
    assert result.data.prediction_drift is not None and result.data.prediction_drift > 0.1


def test_windows_from_the_reference_exceed_the_calibrated_level_at_the_target_rate() -> None:
    rng = np.random.default_rng(12)
    reference = rng.normal(size=(20_000, 8))
    names = [f"f{i}" for i in range(8)]
    profile = ReferenceProfile.build(reference, names)
    permissive = DecisionRule(alpha=0.5, effect_floor_numeric=0.0)
    target = 0.05
    cal = calibrate(
        profile,
        reference,
        names,
        window_size=300,
        rule=permissive,
        target_rate=target,
        draws=300,
        seed=1,
    )
    assert cal.alpha < 0.5 and cal.flag_rate <= target
    fresh = np.random.default_rng(99)
    flagged = [
        detect(
            profile, reference[fresh.integers(0, 20_000, 300)], names, rule=cal.rule()
        ).data.is_drift
        for _ in range(300)
    ]
    # Binomial(300, 0.05) has sd 0.013; the calibration itself is estimated from 300 draws.
    assert 0.01 <= float(np.mean(flagged)) <= 0.10


def test_calibration_reports_expected_false_alerts_per_week() -> None:
    cal = calibrate(PROFILE, X, NAMES, window_size=500, draws=60, seed=2)
    assert cal.alpha <= DecisionRule().alpha
    assert cal.flag_rate == 0.0 and 0 < cal.flag_rate_upper < 0.06  # rule of three
    # 500 events/min in windows of 500: 10,080 windows a week.
    single = cal.expected_false_alerts_per_week(500, level="flag")
    assert single == pytest.approx(10_080 * cal.flag_rate_upper)
    assert cal.expected_false_alerts_per_week(500, level="flag", k=3, n=5) < single / 10
    profile = PROFILE.model_copy(update={"calibration": cal.model_dump()})
    assert detect(profile, _window(6), NAMES).data.alpha == cal.alpha


def test_hysteresis_raises_after_k_of_n_and_clears_after_m_clean() -> None:
    h = Hysteresis(k=3, n=5, m=2)
    states = [h.update(x).drift_detected for x in [1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0]]
    assert states == [False, False, False, False, False, False, True, True, True, True, False]
    with pytest.raises(ValueError, match="k <= n"):
        Hysteresis(k=6, n=5)


def test_rule_comes_from_settings() -> None:
    rule = DecisionRule.from_settings(DriftStatsSettings(alpha=0.02, critical_score=0.9))
    assert (rule.alpha, rule.critical_score) == (0.02, 0.9)
    with pytest.raises(ValueError, match="alpha"):
        DecisionRule(alpha=0.0)
