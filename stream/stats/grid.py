"""A profile's bins and categories compiled into numpy arrays, built once per profile.

Every sketch update and every score of a profile reuses these arrays, so the hot paths
(binning a batch, scoring a window) are a handful of vectorised numpy calls. Features
with fewer bins (ties in the quantiles) are padded to a common width: padded bins have
zero counts on both sides and the same location as the last real bin, so they change
no statistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from stream.stats.labels import as_labels

if TYPE_CHECKING:
    from stream.stats.profile import CategoricalFeatureProfile, NumericFeatureProfile


@dataclass(frozen=True, eq=False)
class NumericGrid:
    """Bin edges, reference counts and bin locations of numeric features, padded."""

    names: list[str]
    edges: list[npt.NDArray[np.float64]]
    #: Real bins of each feature (``len(edges) + 1``).
    nbins: npt.NDArray[np.int64]
    #: ``(features, width)`` reference counts, zero in padded bins.
    ref_counts: npt.NDArray[np.int64]
    #: ``(features, width)`` location (mean reference value) of each bin.
    locations: npt.NDArray[np.float64]
    #: ``(features, width)`` True on real bins.
    valid: npt.NDArray[np.bool_]
    #: Robust sigma of each feature (normalises the Wasserstein distance).
    scale: npt.NDArray[np.float64]

    @property
    def width(self) -> int:
        """Bins per feature after padding."""
        return int(self.ref_counts.shape[1]) if self.ref_counts.ndim == 2 else 0

    @classmethod
    def from_profiles(cls, profiles: Sequence[NumericFeatureProfile]) -> NumericGrid:
        """Compile the grids of ``profiles`` (in order)."""
        nbins = np.array([len(p.counts) for p in profiles], dtype=np.int64)
        width = int(nbins.max()) if len(profiles) else 0
        ref = np.zeros((len(profiles), width), dtype=np.int64)
        loc = np.zeros((len(profiles), width), dtype=float)
        for i, p in enumerate(profiles):
            ref[i, : nbins[i]] = p.counts
            loc[i, : nbins[i]] = p.bin_means
            loc[i, nbins[i] :] = p.bin_means[-1]
        return cls(
            names=[p.name for p in profiles],
            edges=[np.asarray(p.edges, dtype=float) for p in profiles],
            nbins=nbins,
            ref_counts=ref,
            locations=loc,
            valid=np.arange(width)[None, :] < nbins[:, None],
            scale=np.array([p.scale for p in profiles], dtype=float),
        )

    def bin_index(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Flat bin index (``feature * width + bin``) of each value of a ``(n, k)`` batch.

        Exactly ``np.searchsorted(edges, value, side="left")`` per feature (NaNs land
        in the last bin and must be masked by the caller), computed for all features
        at once: a table guesses each value's bin from its position on a uniform grid
        of the feature's range, and the guess is corrected one edge at a time until
        ``edges[b - 1] < value <= edges[b]``. Half the time of one ``searchsorted``
        per feature, which was the largest cost of a sketch update.
        """
        if not values.size:
            return np.zeros(values.shape, dtype=np.int64)
        return self._lookup.bins(values) + np.arange(len(self.edges), dtype=np.int64) * self.width

    @cached_property
    def _lookup(self) -> _BinLookup:
        return _BinLookup(self.edges)


class _BinLookup:
    """The bin-guess table and padded edges of :meth:`NumericGrid.bin_index`."""

    #: Grid cells per feature: with quantile bins most cells hold at most one edge.
    CELLS = 1024

    def __init__(self, edges: list[npt.NDArray[np.float64]]) -> None:
        k = len(edges)
        self.counts = np.array([len(e) for e in edges], dtype=np.int64)
        stride = int(self.counts.max(initial=0)) + 2
        # per feature: NaN, its edges, +inf up to the stride. edges[b] for b = count is
        # +inf (no value moves a guess past the last bin), edges[-1] is NaN (none moves
        # it below the first); ``before[i]`` is ``edges[i - 1]``
        padded = np.full((k, stride), np.inf)
        padded[:, 0] = np.nan
        self.lo = np.zeros(k)
        self.scale = np.zeros(k)
        table = np.zeros((k, self.CELLS + 2), dtype=np.int64)
        for j, e in enumerate(edges):
            padded[j, 1 : 1 + len(e)] = e
            if not len(e):
                continue
            lo, hi = float(e[0]), float(e[-1])
            span = hi - lo if hi > lo and np.isfinite(hi - lo) else 1.0
            self.lo[j], self.scale[j] = lo, self.CELLS / span
            cells = lo + np.arange(self.CELLS) * (span / self.CELLS)
            table[j, 1 : self.CELLS + 1] = np.searchsorted(e, cells, side="left")
            table[j, self.CELLS + 1] = len(e) - 1
        self.edges = padded.ravel()
        self.before = np.concatenate(([np.nan], self.edges[:-1]))
        self.first_edge = np.arange(k, dtype=np.int64) * stride + 1
        self.table = (table + self.first_edge[:, None]).ravel()
        self.first_cell = np.arange(k, dtype=np.int64) * (self.CELLS + 2) + 1

    def bins(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """``searchsorted(edges[j], values[:, j], "left")`` for every column ``j``."""
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: cells clip below
            cell = (values - self.lo) * self.scale
        np.fmax(cell, -1.0, out=cell)  # fmax/fmin: a NaN becomes a valid cell
        np.fmin(cell, float(self.CELLS), out=cell)
        # the guesses, as positions in self.edges; ``at`` is a view of ``flat``
        flat = self.table[(cell.astype(np.int64) + self.first_cell).ravel()]
        at, wanted = flat.reshape(values.shape), np.ravel(values)
        # up until edges[b] >= value, then down until edges[b - 1] < value (moving down
        # keeps edges[b] >= value): one pass over all values each, then the movers only
        moving = np.flatnonzero(self.edges[at] < values)
        while moving.size:
            flat[moving] += 1
            moving = moving[self.edges[flat[moving]] < wanted[moving]]
        moving = np.flatnonzero(self.before[at] >= values)
        while moving.size:
            flat[moving] -= 1
            moving = moving[self.before[flat[moving]] >= wanted[moving]]
        bins: npt.NDArray[np.int64] = at - self.first_edge
        missing = np.isnan(values)
        if missing.any():  # searchsorted puts NaN after every edge
            bins[missing] = np.broadcast_to(self.counts, values.shape)[missing]
        return bins


@dataclass(frozen=True, eq=False)
class CategoryTable:
    """Categories of categorical features; each has one extra slot for unseen labels."""

    names: list[str]
    categories: list[list[str]]
    lookup: list[dict[str, int]]
    #: Reference counts per feature, length ``len(categories) + 1`` (last: unseen, 0).
    ref_counts: list[npt.NDArray[np.int64]]

    @classmethod
    def from_profiles(cls, profiles: Sequence[CategoricalFeatureProfile]) -> CategoryTable:
        """Compile the categories of ``profiles`` (in order)."""
        return cls(
            names=[p.name for p in profiles],
            categories=[list(p.categories) for p in profiles],
            lookup=[{c: i for i, c in enumerate(p.categories)} for p in profiles],
            ref_counts=[np.array([*p.counts, 0], dtype=np.int64) for p in profiles],
        )

    def codes(self, feature: int, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Category index of each value; unseen labels get the extra slot, missing -1."""
        labels = as_labels(values)
        lookup = self.lookup[feature]
        other = len(self.categories[feature])
        uniques = set(labels.tolist())
        table = {u: (-1 if u is None else lookup.get(u, other)) for u in uniques}
        return np.fromiter((table[v] for v in labels.tolist()), dtype=np.int64, count=labels.size)
