"""Two-sample drift statistics computed from counts on the reference's bins.

Every function takes the reference counts and the window counts of one or many
features (rows) on the same bins, so the result depends only on integer counts: the
same for any split of the window into partitions. ``docs/drift.md`` explains each one.

Binned approximations (exact when every distinct value has its own bin):

- **KS**: the largest gap between the two empirical CDFs, looked at only on the bin
  edges. It is a lower bound of the exact statistic (the gap inside a bin is not seen),
  so its p-value errs towards "no drift". The p-value is scipy's asymptotic two-sample
  distribution, ``kstwo.sf(D, round(n*m/(n+m)))``, as ``scipy.stats.ks_2samp`` uses
  with ``method="asymp"``.
- **Wasserstein-1**: each bin's mass sits at the reference's mean value in that bin;
  the distance is then exactly ``scipy.stats.wasserstein_distance`` on those locations
  with the counts as weights (computed here for all features at once by the CDF
  formula ``sum |F - G| * dx``). Mass moved within a bin is not seen, and mass beyond
  the reference's range sits at the outer bins' means, so far shifts are understated.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]

#: Pseudo-count added to every bin before PSI's logarithm, so an empty bin on one side
#: gives a large finite PSI instead of infinity.
PSI_PSEUDO_COUNT = 0.5


def proportions(counts: CountArray) -> FloatArray:
    """Rows of counts as rows of proportions (all-zero rows stay zero)."""
    totals = counts.sum(axis=-1, keepdims=True)
    return np.asarray(counts / np.maximum(totals, 1), dtype=float)


def psi(ref: CountArray, cur: CountArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    """Population stability index per row: ``sum((q - p) * ln(q / p))`` over real bins.

    Both sides get :data:`PSI_PSEUDO_COUNT` per real bin first (padded bins excluded).
    """
    pseudo = np.where(valid, PSI_PSEUDO_COUNT, 0.0)
    p = proportions_smoothed(ref, pseudo)
    q = proportions_smoothed(cur, pseudo)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(valid, (q - p) * np.log(q / p), 0.0)
    return np.asarray(terms.sum(axis=-1), dtype=float)


def proportions_smoothed(counts: CountArray, pseudo: FloatArray) -> FloatArray:
    """Proportions after adding ``pseudo`` to each bin."""
    smoothed = counts + pseudo
    return np.asarray(smoothed / smoothed.sum(axis=-1, keepdims=True), dtype=float)


def ks(ref: CountArray, cur: CountArray) -> tuple[FloatArray, FloatArray]:
    """Binned two-sample Kolmogorov-Smirnov statistic and p-value per row.

    The p-value is the one-sample exact distribution (``scipy.stats.kstwo``) at the
    effective sample size ``n*m/(n+m)``, a standard approximation of the two-sample
    test; it is most of a window's scoring time (~80 %, measured), kept because an
    asymptotic formula would change the calibrated thresholds.
    """
    f_ref = np.cumsum(proportions(ref), axis=-1)
    f_cur = np.cumsum(proportions(cur), axis=-1)
    d = np.abs(f_ref - f_cur).max(axis=-1)
    n = ref.sum(axis=-1).astype(float)
    m = cur.sum(axis=-1).astype(float)
    effective = np.round(n * m / np.maximum(n + m, 1))
    with np.errstate(invalid="ignore"):
        p = np.where(effective > 0, sps.kstwo.sf(d, np.maximum(effective, 1)), 1.0)
    return np.asarray(d, dtype=float), np.clip(np.asarray(p, dtype=float), 0.0, 1.0)


def js_distance(ref: CountArray, cur: CountArray) -> FloatArray:
    """Jensen-Shannon distance (base 2, in [0, 1]) per row, by scipy."""
    if ref.shape[-1] == 0:
        return np.zeros(ref.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        value = jensenshannon(proportions(ref), proportions(cur), axis=-1, base=2)
    result: FloatArray = np.nan_to_num(np.asarray(value, dtype=float), nan=0.0)
    return result


def wasserstein(ref: CountArray, cur: CountArray, locations: FloatArray) -> FloatArray:
    """Wasserstein-1 distance per row with each bin's mass at ``locations`` (sorted)."""
    gap = np.abs(np.cumsum(proportions(ref) - proportions(cur), axis=-1))[..., :-1]
    return np.asarray((gap * np.diff(locations, axis=-1)).sum(axis=-1), dtype=float)


def chi_square(ref: CountArray, cur: CountArray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (scipy's chi2_contingency).

    Categories empty on both sides are dropped; with fewer than two categories left
    there is nothing to test (statistic 0, p-value 1). No Yates correction, so 2-category
    features are tested like any other.
    """
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = sps.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)
