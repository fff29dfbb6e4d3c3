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

        One ``np.searchsorted`` per feature (edges differ per feature); NaNs land in the
        last bin and must be masked by the caller.
        """
        index = np.empty(values.shape, dtype=np.int64)
        for j, edges in enumerate(self.edges):
            index[:, j] = np.searchsorted(edges, values[:, j], side="left")
        index += np.arange(len(self.edges), dtype=np.int64) * self.width
        return index


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
