"""Drift statistics against scipy's exact values, and their basic behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from stream.stats import ReferenceProfile, WindowSketch, detect
from stream.stats import statistics as st
from stream.stats.decision import DecisionRule, benjamini_hochberg, critical_alpha, drift_score


def _integer_samples(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 10, size=3000).astype(float)
    cur = rng.choice(10, size=700, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())
    return ref, cur.astype(float)


def _one_feature(ref: np.ndarray, cur: np.ndarray) -> tuple[ReferenceProfile, WindowSketch]:
    profile = ReferenceProfile.build(ref[:, None], ["x"], bins=50)
    return profile, WindowSketch(profile).update(cur[:, None])


def test_binned_ks_equals_scipy_when_each_value_has_its_own_bin() -> None:
    ref, cur = _integer_samples(1)
    profile, sketch = _one_feature(ref, cur)
    d, p = st.ks(profile.numeric_grid.ref_counts, sketch.numeric.counts)
    exact = sps.ks_2samp(ref, cur, method="asymp")
    assert d[0] == pytest.approx(exact.statistic, abs=1e-12)
    assert p[0] == pytest.approx(exact.pvalue, rel=1e-9)


def test_binned_wasserstein_equals_scipy_on_the_raw_samples() -> None:
    ref, cur = _integer_samples(2)
    profile, sketch = _one_feature(ref, cur)
    grid = profile.numeric_grid
    w = st.wasserstein(grid.ref_counts, sketch.numeric.counts, grid.locations)
    assert w[0] == pytest.approx(sps.wasserstein_distance(ref, cur), abs=1e-12)
    weighted = sps.wasserstein_distance(
        grid.locations[0], grid.locations[0], grid.ref_counts[0], sketch.numeric.counts[0]
    )
    assert w[0] == pytest.approx(weighted, abs=1e-12)


def test_js_and_chi_square_equal_scipy() -> None:
    ref = np.array([[50, 30, 20]])
    cur = np.array([[20, 30, 50]])
    assert st.js_distance(ref, cur)[0] == pytest.approx(
        jensenshannon([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], base=2)
    )
    stat, p = st.chi_square(ref[0], cur[0])
    exact = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert (stat, p) == pytest.approx((exact.statistic, exact.pvalue))


def test_psi_matches_its_formula() -> None:
    ref = np.array([[40, 40, 20]])
    cur = np.array([[20, 40, 40]])
    valid = np.ones((1, 3), dtype=bool)
    p = (ref[0] + 0.5) / (ref[0] + 0.5).sum()
    q = (cur[0] + 0.5) / (cur[0] + 0.5).sum()
    assert st.psi(ref, cur, valid)[0] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))


def test_statistics_are_zero_on_identical_distributions() -> None:
    counts = np.array([[10, 20, 30, 40]])
    locations = np.array([[0.0, 1.0, 2.0, 3.0]])
    valid = np.ones((1, 4), dtype=bool)
    assert st.psi(counts, counts, valid)[0] == pytest.approx(0)
    # The pseudo-count leaves a trace when the totals differ; far below any threshold.
    assert st.psi(counts, counts * 3, valid)[0] < 1e-4
    assert st.ks(counts, counts * 3)[0][0] == 0
    assert st.js_distance(counts, counts * 3)[0] == pytest.approx(0, abs=1e-7)
    assert st.wasserstein(counts, counts * 3, locations)[0] == pytest.approx(0)


@pytest.mark.parametrize("statistic", ["psi", "ks", "js", "wasserstein_norm"])
def test_statistics_grow_with_the_shift(statistic: str) -> None:
    rng = np.random.default_rng(3)
    profile = ReferenceProfile.build(rng.normal(size=(20_000, 1)), ["x"])
    base = rng.normal(size=(5_000, 1))
    values = [
        detect(profile, base + shift, ["x"]).data.features[0].data.statistics[statistic]
        for shift in (0.0, 0.25, 0.5, 1.0, 2.0)
    ]
    assert values == sorted(values)
    assert values[0] < 0.05 < values[-1]


def test_normalised_wasserstein_reads_in_robust_sigmas() -> None:
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.build(rng.normal(5, 3, size=(50_000, 1)), ["x"])
    result = detect(profile, rng.normal(5, 3, size=(20_000, 1)) + 1.5, ["x"])
    assert result.data.features[0].data.test_stat == pytest.approx(0.5, abs=0.05)


def test_benjamini_hochberg_is_scipys() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2])
    assert benjamini_hochberg(p) == pytest.approx(sps.false_discovery_control(p))
    assert benjamini_hochberg(np.zeros(0)).size == 0


def test_drift_score_is_the_weighted_share_of_drifted_features() -> None:
    flags = np.array([True, False, True, False])
    assert drift_score(flags, np.ones(4)) == 0.5
    assert drift_score(flags, np.array([3.0, 1.0, 0.0, 0.0])) == 0.75
    assert drift_score(flags, np.zeros(4)) == 0.0


def test_critical_alpha_is_where_the_score_first_passes_the_threshold() -> None:
    q = np.array([0.2, 0.001, 0.05, 0.01])
    effects = np.array([1.0, 0.0, 1.0, 1.0])  # the smallest q is below the floor
    floors = np.full(4, 0.5)
    assert critical_alpha(q, effects, floors, np.ones(4), 0.0) == 0.01
    assert critical_alpha(q, effects, floors, np.ones(4), 0.25) == 0.05
    assert critical_alpha(q, effects, floors, np.ones(4), 0.9) == float("inf")


def test_tiny_but_certain_shift_is_not_drift() -> None:
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.build(rng.normal(size=(200_000, 1)), ["x"])
    result = detect(profile, rng.normal(size=(200_000, 1)) + 0.05, ["x"])
    feature = result.data.features[0].data
    assert feature.q_val is not None and feature.q_val < 1e-6
    assert feature.test_stat is not None and feature.test_stat < DecisionRule().effect_floor_numeric
    assert not feature.is_drift and not result.data.is_drift
