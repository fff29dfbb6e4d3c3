"""Detection quality on synthetic breast-cancer streams (fixed seeds).

No drift: 2,000 windows of 500 events (1,000,000 events) raise no critical window and
no hysteresis alert. Sudden shift of 5 of 30 features: flagged in the first full window
after onset. Gradual drift of every feature (0 to 1 standard deviation over 10 windows):
flagged within 2 windows of onset, critical within 3, the alert (3 of 5) raised within
4, nothing before. Prediction-only drift (the model's logit pushed by +8, inputs
unchanged): the prediction flagged in the first full window after onset, no input
feature ever flagged, no critical window (drift_score is about inputs). The delays are
documented in docs/drift.md ("Detection quality").
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stream.stats import (
    DecisionRule,
    Hysteresis,
    ReferenceProfile,
    WindowSketch,
    calibrate,
    score_window,
)

DATA = load_breast_cancer()
X: np.ndarray = DATA.data
NAMES: list[str] = list(DATA.feature_names)
WINDOW = 500


def _profile_and_rule() -> tuple[ReferenceProfile, DecisionRule]:
    profile = ReferenceProfile.build(X, NAMES)
    return profile, calibrate(profile, X, NAMES, window_size=WINDOW, draws=100, seed=3).rule()


def test_no_drift_stream_of_a_million_events_raises_no_critical_window() -> None:
    profile, rule = _profile_and_rule()
    rng = np.random.default_rng(2026)
    alert = Hysteresis(k=3, n=5, m=3)
    critical = flagged = raised = 0
    for _ in range(2_000):
        sketch = WindowSketch(profile).update(X[rng.integers(0, len(X), WINDOW)])
        result = score_window(profile, sketch, rule)
        critical += result.data.critical
        flagged += result.data.is_drift
        raised += alert.update(result.data.is_drift).drift_detected
    assert critical == 0
    assert raised == 0
    assert flagged <= 20  # calibrated at 1 %; measured 0


def test_sudden_shift_is_flagged_in_the_first_full_window_after_onset() -> None:
    profile, rule = _profile_and_rule()
    rng = np.random.default_rng(7)
    onset = 3 * WINDOW + 200  # mid-window: that window is partly shifted
    events = X[rng.integers(0, len(X), 6 * WINDOW)].copy()
    events[onset:, 5:10] += 1.5 * X[:, 5:10].std(axis=0)
    flags = [
        score_window(
            profile,
            WindowSketch(profile).update(events[i : i + WINDOW]),
            rule,
        ).data.is_drift
        for i in range(0, len(events), WINDOW)
    ]
    assert flags[:3] == [False, False, False]
    assert flags[4]  # the first full window after onset


PRE_ONSET = 20  # windows of no drift before each change: long enough to see a false flag


def _first(flags: list[bool], start: int) -> int | None:
    """Index of the first True at or after ``start``, counted from ``start``."""
    return next((i - start for i in range(start, len(flags)) if flags[i]), None)


def test_gradual_drift_is_flagged_within_two_windows_and_critical_within_three() -> None:
    profile, rule = _profile_and_rule()
    rng = np.random.default_rng(11)
    windows, ramp = PRE_ONSET + 16, 10 * WINDOW
    onset = PRE_ONSET * WINDOW
    events = X[rng.integers(0, len(X), windows * WINDOW)].copy()
    share = np.clip((np.arange(len(events)) - onset) / ramp, 0.0, 1.0)  # 0 -> 1 over 10
    events += share[:, None] * X.std(axis=0)  # every feature, up to one sd
    alert = Hysteresis(k=3, n=5, m=3)
    flagged, critical, raised = [], [], []
    for i in range(0, len(events), WINDOW):
        data = score_window(
            profile, WindowSketch(profile).update(events[i : i + WINDOW]), rule
        ).data
        flagged.append(data.is_drift)
        critical.append(data.critical)
        raised.append(alert.update(data.is_drift).drift_detected)
    assert not any(flagged[:PRE_ONSET]) and not any(critical[:PRE_ONSET])
    # Window k after onset holds a mean shift of (k + 0.5) / 10 sd: flagged from ~0.15 sd.
    flag_delay, critical_delay = _first(flagged, PRE_ONSET), _first(critical, PRE_ONSET)
    alert_delay = _first(raised, PRE_ONSET)
    assert flag_delay is not None and flag_delay <= 2  # measured 1
    assert critical_delay is not None and critical_delay <= 3  # measured 2
    assert alert_delay is not None and alert_delay <= 4  # measured 3
    assert all(flagged[PRE_ONSET + 3 :]) and all(critical[PRE_ONSET + 3 :])


def test_prediction_only_drift_flags_the_prediction_and_no_feature() -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, DATA.target)
    probability = model.predict_proba(X)[:, 1]
    predicted = (probability >= 0.5).astype(float)
    profile = ReferenceProfile.build(X, NAMES, predicted=predicted, probability=probability)
    rule = calibrate(
        profile, X, NAMES, window_size=WINDOW, predicted=predicted, probability=probability,
        draws=100, seed=3,
    ).rule()  # fmt: skip
    rng = np.random.default_rng(11)
    windows = PRE_ONSET + 8
    onset = PRE_ONSET * WINDOW + 200  # mid-window
    rows = rng.integers(0, len(X), windows * WINDOW)
    p = np.clip(probability[rows], 1e-12, 1 - 1e-12)
    bugged = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + 8.0)))  # a serving bug: logit + 8
    p = np.where(np.arange(len(rows)) >= onset, bugged, p)
    labels = (p >= 0.5).astype(float).astype(object)
    results = [
        score_window(
            profile,
            WindowSketch(profile).update(
                X[rows[i : i + WINDOW]],
                predicted=labels[i : i + WINDOW],
                probability=p[i : i + WINDOW],
            ),
            rule,
        ).data
        for i in range(0, len(rows), WINDOW)
    ]
    prediction = [r.prediction_is_drift for r in results]
    assert not any(prediction[:PRE_ONSET])
    assert all(prediction[PRE_ONSET + 1 :])  # from the first full window after onset
    assert not any(r.is_drift for r in results)  # inputs did not move
    assert not any(r.critical for r in results)
    assert all(r.drift_score == 0.0 for r in results)
