"""The validation gate: floors, the calibration ceiling, regression against the champion."""

from __future__ import annotations

import math

from retrain.gate import evaluate_gate
from retrain.settings import RetrainSettings

GOOD = {"accuracy": 0.97, "roc_auc": 0.99, "f1": 0.97, "calibration_error": 0.03}
SETTINGS = RetrainSettings(gate_max_regression=0.02)


def test_a_good_candidate_without_champion_passes() -> None:
    result = evaluate_gate({"holdout": GOOD}, None, SETTINGS)
    assert result.passed and result.reasons == []


def test_each_floor_and_the_calibration_ceiling_are_enforced() -> None:
    bad = GOOD | {"accuracy": 0.6, "calibration_error": 0.2}
    result = evaluate_gate({"holdout": bad}, None, SETTINGS)
    assert not result.passed
    assert result.reasons == [
        "holdout accuracy 0.6000 is below the floor 0.9",
        "holdout calibration_error 0.2000 is above the ceiling 0.1",
    ]


def test_nan_or_missing_metrics_fail_rather_than_pass() -> None:
    result = evaluate_gate({"holdout": GOOD | {"roc_auc": math.nan}}, None, SETTINGS)
    assert not result.passed and "holdout roc_auc missing" in result.reason
    assert not evaluate_gate({}, None, SETTINGS).passed


def test_regression_against_the_champion_on_the_same_data() -> None:
    champion = {"holdout": GOOD, "recent": GOOD}
    within = {"holdout": GOOD | {"f1": 0.955}, "recent": GOOD}
    assert evaluate_gate(within, champion, SETTINGS).passed
    worse = {"holdout": GOOD, "recent": GOOD | {"accuracy": 0.94}}
    result = evaluate_gate(worse, champion, SETTINGS)
    assert not result.passed
    assert result.reasons == [
        "recent accuracy 0.9400 regresses more than 0.02 from the champion's 0.9700"
    ]


def test_data_sets_scored_for_one_side_only_are_not_compared() -> None:
    champion = {"holdout": GOOD, "recent": GOOD | {"accuracy": 1.0}}
    assert evaluate_gate({"holdout": GOOD}, champion, SETTINGS).passed
