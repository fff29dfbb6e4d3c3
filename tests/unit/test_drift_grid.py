"""Binning shortcuts are exact: bin_index is one np.searchsorted per feature, whatever the
values, and a NaN-free batch is counted as the masked path counts it."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stream.stats.grid import NumericGrid
from stream.stats.sketch import NumericCounts


def _grid(edges: list[list[float]]) -> NumericGrid:
    """A grid with these edges (counts and locations do not matter for binning)."""
    arrays = [np.array(sorted(e), dtype=float) for e in edges]
    width = max(len(e) for e in arrays) + 1
    k = len(arrays)
    return NumericGrid(
        names=[f"f{j}" for j in range(k)],
        edges=arrays,
        nbins=np.array([len(e) + 1 for e in arrays], dtype=np.int64),
        ref_counts=np.zeros((k, width), dtype=np.int64),
        locations=np.zeros((k, width)),
        valid=np.ones((k, width), dtype=bool),
        scale=np.ones(k),
    )


def _expected(grid: NumericGrid, values: np.ndarray) -> np.ndarray:
    columns = [
        np.searchsorted(edges, values[:, j], side="left") + j * grid.width
        for j, edges in enumerate(grid.edges)
    ]
    return np.stack(columns, axis=1) if columns else np.empty(values.shape, dtype=np.int64)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
edges = st.lists(st.lists(finite, max_size=25), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(edges, st.data())
def test_bins_equal_searchsorted(feature_edges: list[list[float]], data: st.DataObject) -> None:
    """Ties with edges, duplicate edges, -0.0, infinities, NaN, values far outside."""
    grid = _grid(feature_edges)
    k = len(feature_edges)
    specials = [e for es in feature_edges for e in es] + [0.0, -0.0, np.inf, -np.inf, np.nan]
    element = st.one_of(st.floats(width=64), st.sampled_from(specials))
    values = data.draw(
        hnp.arrays(np.float64, st.tuples(st.integers(0, 40), st.just(k)), elements=element)
    )
    np.testing.assert_array_equal(grid.bin_index(values), _expected(grid, values))


def test_bins_of_quantile_edges_on_a_skewed_feature() -> None:
    """Quantile edges crowd where the data is (many per grid cell): still exact."""
    rng = np.random.default_rng(3)
    reference = rng.lognormal(0, 3, size=(5000, 3))
    feature_edges = [
        np.unique(np.quantile(reference[:, j], np.linspace(0, 1, 40)[1:-1])) for j in range(3)
    ]
    grid = _grid([list(e) for e in feature_edges])
    values = np.concatenate([rng.lognormal(0, 3, size=(20000, 3)), reference[:500]])
    values[rng.random(values.shape) < 0.01] = np.nan
    np.testing.assert_array_equal(grid.bin_index(values), _expected(grid, values))


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 30), st.just(3)),
        # no -0.0: the all-NaN row adds +0.0 to the sums, which turns -0.0 into 0.0
        elements=st.floats(-1e6, 1e6).map(lambda x: x + 0.0),
    )
)
def test_a_complete_batch_counts_as_the_masked_path_does(values: np.ndarray) -> None:
    """The NaN-free shortcut of NumericCounts.update equals the masked path bit for bit:
    the same batch plus one all-NaN row differs only in the missing counts."""
    grid = _grid([[-1.0, 0.0, 2.5], [0.0], [1e-3, 1e3]])
    complete, masked = NumericCounts(grid), NumericCounts(grid)
    complete.update(values)
    masked.update(np.vstack([values, np.full((1, 3), np.nan)]))
    assert masked.missing.tolist() == [1, 1, 1]
    masked.missing[:] = 0
    assert json.dumps(complete.state()) == json.dumps(masked.state())
