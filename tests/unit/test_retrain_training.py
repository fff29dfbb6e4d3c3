"""The baseline's data: a fixed split, and drift fixtures that are a documented shift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrain.drift_fixtures import SIZE_FACTOR, SIZE_FEATURES, drift_fixtures, write_drift_fixtures
from retrain.profiles import build_reference_profile
from retrain.training import build_pipeline, evaluate
from schemas.breast_cancer import TARGET, feature_names, load_split
from stream.stats import detect

REPO = Path(__file__).resolve().parents[2]


def test_split_is_fixed_stratified_and_disjoint() -> None:
    first, second = load_split(), load_split()
    assert np.array_equal(first.x_validation, second.x_validation)
    assert first.x_train.shape == (426, 30) and first.x_validation.shape == (143, 30)
    # Stratified: both halves keep the data set's share of benign cases (~62.7 %).
    assert abs(first.y_train.mean() - first.y_validation.mean()) < 0.01
    train_rows = {row.tobytes() for row in first.x_train}
    assert not any(row.tobytes() in train_rows for row in first.x_validation)
    assert first.features == feature_names() and len(first.features) == 30


def test_baseline_pipeline_is_accurate_on_validation() -> None:
    split = load_split()
    model = build_pipeline().fit(split.x_train, split.y_train)
    metrics = evaluate(model, split.x_validation, split.y_validation)
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.95 and metrics["f1"] > 0.9


def test_current_fixture_is_the_documented_shift_of_held_out_rows() -> None:
    reference, current = drift_fixtures()
    split = load_split()
    names = list(split.features)
    assert list(reference.columns) == [*names, TARGET] == list(current.columns)
    assert np.array_equal(reference[names].to_numpy(), split.x_train)
    unshifted = [n for n in names if n not in SIZE_FEATURES and n != "mean texture"]
    held_out = pd.DataFrame(split.x_validation, columns=names)
    assert np.array_equal(current[unshifted].to_numpy(), held_out[unshifted].to_numpy())
    assert np.array_equal(current[TARGET].to_numpy(), split.y_validation)
    for name in SIZE_FEATURES:
        ratio = current[name].mean() / split.x_validation[:, names.index(name)].mean()
        assert abs(ratio - SIZE_FACTOR) < 0.02, name
    assert current["mean texture"].mean() > split.x_validation[:, 1].mean() + 3.0


def test_committed_fixtures_are_what_training_writes(tmp_path: Path) -> None:
    """data/sample/*.csv are reproducible: regenerating them gives the same numbers."""
    write_drift_fixtures(tmp_path / "ref.csv", tmp_path / "cur.csv")
    for mine, committed in (("ref.csv", "drift_reference.csv"), ("cur.csv", "drift_current.csv")):
        fresh = pd.read_csv(tmp_path / mine)
        shipped = pd.read_csv(REPO / "data" / "sample" / committed)
        pd.testing.assert_frame_equal(fresh, shipped)


def test_reference_profile_is_the_training_rows_with_the_models_outputs() -> None:
    """Training rows score no drift against it; the committed shifted fixture is flagged."""
    split = load_split()
    model = build_pipeline().fit(split.x_train, split.y_train)
    profile = build_reference_profile(
        model, split.x_train, split.features, "breast-cancer-classifier", "7", run_id="r1"
    )
    assert profile.feature_names == list(feature_names())
    assert profile.metadata["model_version"] == "7" and profile.metadata["run_id"] == "r1"
    assert profile.prediction is not None and profile.prediction.categories == ["0", "1"]
    assert sum(profile.prediction.counts) == len(split.x_train)
    assert profile.probability is not None
    assert profile.numeric[0].moments.count == len(split.x_train)

    same = detect(
        profile,
        split.x_train,
        split.features,
        predicted=model.predict(split.x_train),
        probability=model.predict_proba(split.x_train)[:, 1],
    )
    assert same.data.drift_score == 0.0 and not same.data.is_drift
    assert not same.data.prediction_is_drift

    current = pd.read_csv(REPO / "data" / "sample" / "drift_current.csv")
    shifted = detect(profile, current[list(split.features)].to_numpy(), split.features)
    assert shifted.data.is_drift and shifted.data.drift_score > 0
    flagged = {f.meta.name for f in shifted.data.features if f.data.is_drift}
    assert "mean radius" in flagged and "mean texture" in flagged
