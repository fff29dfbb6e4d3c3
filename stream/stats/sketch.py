"""Mergeable window state: counts on the reference's bins, moments, category counts.

A :class:`WindowSketch` is what a processor keeps per open window, per partition. Its
counts are integers on the reference profile's bins, so ``merge`` is exact and
associative: the statistics of a window (all computed from the counts) are bit-for-bit
the same whatever the number of partitions, instances or batches the events came in.
The moments (mean, variance via Chan et al.'s parallel formula) are floating point and
agree to rounding only; they are reported, never decided on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from stream.stats.exceptions import BatchShapeError, SketchMismatchError
from stream.stats.grid import CategoryTable, NumericGrid
from stream.stats.profile import ReferenceProfile


class NumericCounts:
    """Bin counts, missing counts and moments of numeric columns on one grid."""

    def __init__(self, grid: NumericGrid) -> None:
        self.grid = grid
        k = len(grid.names)
        self.counts = np.zeros((k, grid.width), dtype=np.int64)
        self.missing = np.zeros(k, dtype=np.int64)
        self.n = np.zeros(k, dtype=np.int64)
        self.mean = np.zeros(k, dtype=float)
        self.m2 = np.zeros(k, dtype=float)
        self.min = np.full(k, np.inf)
        self.max = np.full(k, -np.inf)

    def update(self, values: npt.NDArray[np.float64]) -> None:
        """Count a ``(n, k)`` batch (NaN = missing): one bincount for all features."""
        k = len(self.grid.names)
        if values.ndim != 2 or values.shape[1] != k:
            raise BatchShapeError(f"numeric batch has shape {values.shape}, expected (n, {k})")
        present = ~np.isnan(values)
        if present.all():  # the usual batch: the same sums without the masking passes
            self._update_complete(np.ascontiguousarray(values))
            return
        flat = self.grid.bin_index(values)[present]
        self.counts += np.bincount(flat, minlength=k * self.grid.width).reshape(k, self.grid.width)
        batch_n = present.sum(axis=0)
        self.missing += values.shape[0] - batch_n
        safe_n = np.maximum(batch_n, 1)
        zeroed = np.where(present, values, 0.0)
        batch_mean = zeroed.sum(axis=0) / safe_n
        batch_m2 = (np.where(present, values - batch_mean, 0.0) ** 2).sum(axis=0)
        self._combine(
            batch_n,
            batch_mean,
            batch_m2,
            np.where(present, values, np.inf).min(axis=0, initial=np.inf),
            np.where(present, values, -np.inf).max(axis=0, initial=-np.inf),
        )

    def _update_complete(self, values: npt.NDArray[np.float64]) -> None:
        """:meth:`update` of a C-ordered batch without NaN: bit for bit the same result
        (``np.where`` would return these very values, C-ordered, to the same reductions)."""
        k, width = len(self.grid.names), self.grid.width
        flat = self.grid.bin_index(values).ravel()
        self.counts += np.bincount(flat, minlength=k * width).reshape(k, width)
        n = values.shape[0]
        batch_n = np.full(k, n, dtype=np.int64)
        batch_mean = values.sum(axis=0) / max(n, 1)
        batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
        self._combine(
            batch_n,
            batch_mean,
            batch_m2,
            values.min(axis=0, initial=np.inf),
            values.max(axis=0, initial=-np.inf),
        )

    def merge(self, other: NumericCounts) -> None:
        """Add another partial of the same grid (exact for counts, Chan for moments)."""
        self.counts += other.counts
        self.missing += other.missing
        self._combine(other.n, other.mean, other.m2, other.min, other.max)

    def _combine(
        self,
        n_b: npt.NDArray[np.int64],
        mean_b: npt.NDArray[np.float64],
        m2_b: npt.NDArray[np.float64],
        min_b: npt.NDArray[np.float64],
        max_b: npt.NDArray[np.float64],
    ) -> None:
        total = self.n + n_b
        safe = np.maximum(total, 1)
        delta = mean_b - self.mean
        self.mean = np.where(total > 0, self.mean + delta * (n_b / safe), 0.0)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / safe)
        self.n = total
        self.min = np.minimum(self.min, min_b)
        self.max = np.maximum(self.max, max_b)

    def moments(self) -> list[dict[str, float | int | None]]:
        """Count, mean, variance, min, max per feature (None where nothing was seen)."""
        out: list[dict[str, float | int | None]] = []
        for j in range(len(self.grid.names)):
            seen = bool(self.n[j] > 0)
            out.append(
                {
                    "count": int(self.n[j]),
                    "mean": float(self.mean[j]) if seen else None,
                    "variance": float(self.m2[j] / self.n[j]) if seen else None,
                    "min": float(self.min[j]) if seen else None,
                    "max": float(self.max[j]) if seen else None,
                }
            )
        return out

    def state(self) -> dict[str, Any]:
        """JSON-able state (changelogs, checkpoints)."""
        return {
            "counts": self.counts.tolist(),
            "missing": self.missing.tolist(),
            "n": self.n.tolist(),
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": [None if not np.isfinite(v) else v for v in self.min.tolist()],
            "max": [None if not np.isfinite(v) else v for v in self.max.tolist()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state`."""
        self.counts = np.array(state["counts"], dtype=np.int64).reshape(self.counts.shape)
        self.missing = np.array(state["missing"], dtype=np.int64)
        self.n = np.array(state["n"], dtype=np.int64)
        self.mean = np.array(state["mean"], dtype=float)
        self.m2 = np.array(state["m2"], dtype=float)
        self.min = np.array([np.inf if v is None else v for v in state["min"]], dtype=float)
        self.max = np.array([-np.inf if v is None else v for v in state["max"]], dtype=float)


class CategoryCounts:
    """Counts per category (plus one slot for unseen labels) of categorical columns."""

    def __init__(self, table: CategoryTable) -> None:
        self.table = table
        self.counts = [np.zeros(len(c) + 1, dtype=np.int64) for c in table.categories]
        self.missing = np.zeros(len(table.names), dtype=np.int64)

    def update(self, columns: npt.NDArray[Any]) -> None:
        """Count a ``(n, c)`` batch of labels (``None`` = missing)."""
        c = len(self.table.names)
        if columns.ndim != 2 or columns.shape[1] != c:
            raise BatchShapeError(f"categorical batch has shape {columns.shape}, expected (n, {c})")
        for j in range(c):
            codes = self.table.codes(j, columns[:, j])
            present = codes[codes >= 0]
            self.missing[j] += codes.size - present.size
            self.counts[j] += np.bincount(present, minlength=self.counts[j].size)

    def merge(self, other: CategoryCounts) -> None:
        """Add another partial of the same table (exact)."""
        for mine, theirs in zip(self.counts, other.counts, strict=True):
            mine += theirs
        self.missing += other.missing

    def state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"counts": [c.tolist() for c in self.counts], "missing": self.missing.tolist()}

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state`."""
        self.counts = [np.array(c, dtype=np.int64) for c in state["counts"]]
        self.missing = np.array(state["missing"], dtype=np.int64)


class WindowSketch:
    """Everything a window needs to be scored, mergeable across partitions.

    Examples
    --------
    >>> import numpy as np
    >>> from stream.stats import ReferenceProfile, WindowSketch
    >>> rng = np.random.default_rng(0)
    >>> profile = ReferenceProfile.build(rng.normal(size=(1000, 2)), ["a", "b"], bins=10)
    >>> whole = WindowSketch(profile).update(rng.normal(size=(300, 2)))
    >>> left, right = WindowSketch(profile), WindowSketch(profile)
    >>> _ = left.update(rng.normal(size=(100, 2))), right.update(rng.normal(size=(200, 2)))
    >>> left.merge(right).event_count
    300
    """

    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.numeric = NumericCounts(profile.numeric_grid)
        self.categorical = CategoryCounts(profile.category_table)
        prediction, probability = profile.prediction_table, profile.probability_grid
        self.prediction = None if prediction is None else CategoryCounts(prediction)
        self.probability = None if probability is None else NumericCounts(probability)
        self.event_count = 0

    @property
    def reference_id(self) -> str:
        """Id of the reference profile whose bins this sketch counts on."""
        return self.profile.reference_id

    def update(
        self,
        numeric: npt.ArrayLike,
        *,
        categorical: npt.ArrayLike | None = None,
        predicted: npt.ArrayLike | None = None,
        probability: npt.ArrayLike | None = None,
    ) -> WindowSketch:
        """Count a batch of events.

        :param numeric: ``(n, k)`` values of the profile's numeric features, in
            ``profile.numeric_names`` order; NaN where a feature is missing.
        :param categorical: ``(n, c)`` labels in ``profile.categorical_names`` order.
        :param predicted: ``(n,)`` predicted classes, when the profile has them.
        :param probability: ``(n,)`` probabilities, when the profile has them.
        """
        values = np.asarray(numeric, dtype=float)
        if values.ndim == 1 and not self.profile.numeric:
            values = values.reshape(-1, 0)
        n = values.shape[0]
        self.numeric.update(values)
        if self.profile.categorical:
            if categorical is None:
                raise BatchShapeError("the profile has categorical features: pass categorical=")
            columns = np.asarray(categorical, dtype=object)
            _check_rows(columns.shape[0], n, "categorical")
            self.categorical.update(columns)
        if predicted is not None and self.prediction is not None:
            labels = np.asarray(predicted, dtype=object).reshape(-1, 1)
            _check_rows(labels.shape[0], n, "predicted")
            self.prediction.update(labels)
        if probability is not None and self.probability is not None:
            scores = np.asarray(probability, dtype=float).reshape(-1, 1)
            _check_rows(scores.shape[0], n, "probability")
            self.probability.update(scores)
        self.event_count += n
        return self

    def merge(self, other: WindowSketch) -> WindowSketch:
        """Add another sketch of the same reference into this one (exact, associative)."""
        if other.reference_id != self.reference_id:
            raise SketchMismatchError(
                f"cannot merge a sketch on {other.reference_id} into one on {self.reference_id}"
            )
        self.numeric.merge(other.numeric)
        self.categorical.merge(other.categorical)
        if self.prediction is not None and other.prediction is not None:
            self.prediction.merge(other.prediction)
        if self.probability is not None and other.probability is not None:
            self.probability.merge(other.probability)
        self.event_count += other.event_count
        return self

    @classmethod
    def merged(cls, profile: ReferenceProfile, parts: list[WindowSketch]) -> WindowSketch:
        """A new sketch holding the sum of ``parts`` (which are left unchanged)."""
        total = cls(profile)
        for part in parts:
            total.merge(part)
        return total

    def state(self) -> dict[str, Any]:
        """JSON-able state, to rebuild an open window after a restart."""
        return {
            "reference_id": self.reference_id,
            "event_count": self.event_count,
            "numeric": self.numeric.state(),
            "categorical": self.categorical.state(),
            "prediction": None if self.prediction is None else self.prediction.state(),
            "probability": None if self.probability is None else self.probability.state(),
        }

    @classmethod
    def from_state(cls, profile: ReferenceProfile, state: dict[str, Any]) -> WindowSketch:
        """Rebuild a sketch saved by :meth:`state` on the same profile."""
        if state["reference_id"] != profile.reference_id:
            raise SketchMismatchError(
                f"state was counted on {state['reference_id']}, not {profile.reference_id}"
            )
        sketch = cls(profile)
        sketch.event_count = int(state["event_count"])
        sketch.numeric.restore(state["numeric"])
        sketch.categorical.restore(state["categorical"])
        if sketch.prediction is not None and state["prediction"] is not None:
            sketch.prediction.restore(state["prediction"])
        if sketch.probability is not None and state["probability"] is not None:
            sketch.probability.restore(state["probability"])
        return sketch


def _check_rows(got: int, expected: int, what: str) -> None:
    if got != expected:
        raise BatchShapeError(f"{what} has {got} rows, the numeric batch {expected}")
