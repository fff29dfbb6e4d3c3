"""Reference profiles: bins, moments, persistence as JSON, building from a CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.stats import ProfileError, ReferenceProfile

RNG = np.random.default_rng(11)


def test_numeric_profile_has_quantile_bins_moments_and_robust_scale() -> None:
    x = RNG.normal(10, 2, size=10_000)
    profile = ReferenceProfile.build(x[:, None], ["x"], bins=10)
    feature = profile.numeric[0]
    assert len(feature.edges) == 9 and len(feature.counts) == 10
    assert all(abs(c - 1000) <= 1 for c in feature.counts)  # quantile bins hold a tenth
    assert feature.moments.count == 10_000
    assert feature.moments.mean == pytest.approx(x.mean())
    assert feature.moments.variance == pytest.approx(x.var())
    assert (feature.moments.min, feature.moments.max) == (x.min(), x.max())
    assert feature.scale == pytest.approx(2.0, rel=0.05)
    assert feature.bin_means == sorted(feature.bin_means)


def test_ties_give_fewer_bins_not_empty_duplicates() -> None:
    profile = ReferenceProfile.build(RNG.integers(0, 3, size=(1000, 1)), ["k"], bins=20)
    assert profile.numeric[0].edges == [0.0, 1.0, 2.0]


def test_categorical_prediction_and_probability_are_profiled() -> None:
    rows = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"], [4.0, None]], dtype=object)
    profile = ReferenceProfile.build(
        rows,
        ["n", "c"],
        categorical_columns=["c"],
        predicted=[1, 0, 1.0, 1],
        probability=[0.9, 0.2, 0.7, 0.8],
        bins=2,
    )
    cat = profile.categorical[0]
    assert (cat.categories, cat.counts, cat.missing) == (["a", "b"], [2, 1], 1)
    assert profile.prediction is not None
    assert (profile.prediction.categories, profile.prediction.counts) == (["0", "1"], [1, 3])
    assert profile.probability is not None and profile.probability.moments.count == 4


def test_json_round_trip_keeps_content_and_id(tmp_path: Path) -> None:
    profile = ReferenceProfile.build(
        RNG.normal(size=(500, 3)), ["a", "b", "c"], importances={"a": 2.0}
    )
    again = ReferenceProfile.load(profile.save(tmp_path / "ref.json"))
    assert again.model_dump() == profile.model_dump()
    assert again.reference_id == profile.reference_id
    assert profile.reference_id.startswith("ref-")
    np.testing.assert_array_equal(again.numeric_grid.ref_counts, profile.numeric_grid.ref_counts)


def test_id_depends_on_content_only() -> None:
    data = RNG.normal(size=(300, 2))
    first = ReferenceProfile.build(data, ["a", "b"], metadata={"run": "1"})
    assert ReferenceProfile.build(data, ["a", "b"], metadata={"run": "2"}).reference_id == (
        first.reference_id
    )
    assert ReferenceProfile.build(data + 1, ["a", "b"]).reference_id != first.reference_id


def test_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    lines = ["age,city,label,score"] + [
        f"{20 + i % 30},{'ab'[i % 2]},{i % 2},{(i % 10) / 10}" for i in range(200)
    ]
    path.write_text("\n".join(lines) + "\n,,1,0.5\n")
    profile = ReferenceProfile.from_csv(
        path, categorical_columns=["city"], prediction_column="label", probability_column="score"
    )
    assert profile.numeric_names == ["age"] and profile.categorical_names == ["city"]
    assert profile.numeric[0].missing == 1 and profile.categorical[0].missing == 1
    assert profile.prediction is not None and sum(profile.prediction.counts) == 201


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="'x' has no finite values"):
        ReferenceProfile.build(np.full((5, 1), np.nan), ["x"])
    with pytest.raises(ProfileError, match="expected"):
        ReferenceProfile.build(np.zeros((5, 2)), ["x"])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    with pytest.raises(ProfileError, match="'b' is not numeric"):
        ReferenceProfile.from_csv(bad)
    with pytest.raises(ProfileError, match="cannot read"):
        ReferenceProfile.load(tmp_path / "absent.json")
