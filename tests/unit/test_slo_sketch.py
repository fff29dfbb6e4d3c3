"""LatencySketch: DDSketch quantiles within 1 % of numpy's exact ones; merges are exact."""

from __future__ import annotations

import numpy as np
import pytest
from ddsketch import DDSketch

from stream.slo import LatencySketch, SloWindowState
from stream.slo.sketch import REPORTED

QUANTILES = (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999)


def _samples(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "lognormal":
        return rng.lognormal(3.0, 1.2, n)
    if kind == "exponential":
        return rng.exponential(40.0, n)
    if kind == "uniform":
        return rng.uniform(0.5, 2000.0, n)
    # bimodal: a fast cache path and a slow model path, with a long tail
    fast = rng.normal(2.0, 0.3, n // 2).clip(0.05)
    slow = rng.gamma(4.0, 60.0, n - n // 2)
    return np.concatenate([fast, slow])


@pytest.mark.parametrize("kind", ["lognormal", "exponential", "uniform", "bimodal"])
@pytest.mark.parametrize("n", [1, 17, 1000, 100_000])
def test_quantiles_within_one_percent_of_exact(kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    x = _samples(kind, n, rng)
    sketch = LatencySketch(0.01)
    for part in np.array_split(x, 7):  # batches, as the processor feeds it
        sketch.update(part)
    assert sketch.count == n
    for q in QUANTILES:
        exact = float(np.quantile(x, q, method="lower"))  # order statistic at q * (n - 1)
        assert sketch.quantile(q) == pytest.approx(exact, rel=0.01), (kind, n, q)


def test_a_finer_accuracy_is_honoured() -> None:
    x = np.random.default_rng(3).lognormal(4.0, 1.0, 50_000)
    sketch = LatencySketch(0.002)
    sketch.update(x)
    for q in REPORTED:
        assert sketch.quantile(q) == pytest.approx(np.quantile(x, q, method="lower"), rel=0.002)


def test_batch_path_is_the_library_value_by_value() -> None:
    # Same buckets and same quantiles as ddsketch's own add() one value at a time.
    x = np.random.default_rng(5).lognormal(2.0, 2.0, 20_000)
    ours = LatencySketch(0.01)
    ours.update(x)
    theirs = DDSketch(0.01)
    for value in x.tolist():
        theirs.add(value)
    assert np.array_equal(ours.keys(x), [ours.mapping.key(v) for v in x.tolist()])
    for q in QUANTILES:
        assert ours.quantile(q) == theirs.get_quantile_value(q)


def test_merge_of_any_split_equals_one_pass() -> None:
    rng = np.random.default_rng(9)
    x = _samples("bimodal", 30_000, rng)
    whole = LatencySketch()
    whole.update(x)
    parts = np.split(x, np.sort(rng.choice(np.arange(1, len(x)), 4, replace=False)))
    merged = LatencySketch()
    for part in parts:
        piece = LatencySketch()
        piece.update(part)
        merged.merge(piece)
    assert merged.buckets() == whole.buckets()
    assert [merged.quantile(q) for q in QUANTILES] == [whole.quantile(q) for q in QUANTILES]


def test_zero_latency_and_empty_sketch() -> None:
    sketch = LatencySketch()
    assert sketch.quantile(0.5) == 0.0
    sketch.update(np.array([0.0, 0.0, 0.0, 5.0]))
    assert sketch.count == 4
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(5.0, rel=0.01)


def test_window_state_merge_counts_and_sketch_exactly() -> None:
    rng = np.random.default_rng(2)
    latency = rng.lognormal(5.0, 1.5, 5000)
    outcome = rng.choice(3, 5000, p=[0.9, 0.07, 0.03]).astype(np.int8)
    versions = ["1"] * 2500 + ["2"] * 2500
    whole = SloWindowState(0.01, 1000.0)
    whole.update(latency, outcome, versions)
    left, right = SloWindowState(0.01, 1000.0), SloWindowState(0.01, 1000.0)
    left.update(latency[:2500], outcome[:2500], versions[:2500])
    right.update(latency[2500:], outcome[2500:], versions[2500:])
    assert (left.model_version, right.model_version) == ("1", "2")
    merged = left.merge(right)
    got = (merged.requests, merged.client_errors, merged.server_errors, merged.slow)
    assert got == (whole.requests, whole.client_errors, whole.server_errors, whole.slow)
    assert merged.quantiles() == whole.quantiles()
    assert (whole.client_errors, whole.server_errors) == (
        int((outcome == 1).sum()),
        int((outcome == 2).sum()),
    )
    assert whole.slow == int((latency > 1000.0).sum())
    assert merged.model_version is None  # a rollout inside the window
    with pytest.raises(ValueError, match="latency thresholds"):
        merged.merge(SloWindowState(0.01, 500.0))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_non_finite_latency_is_refused_by_name_and_the_sketch_is_unchanged(bad: float) -> None:
    sketch = LatencySketch()
    sketch.update(np.array([5.0, 7.0]))
    with pytest.raises(ValueError, match="latencies must be finite"):
        sketch.update(np.array([3.0, bad, 9.0]))
    assert sketch.count == 2
