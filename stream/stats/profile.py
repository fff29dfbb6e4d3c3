"""The reference profile: what "no drift" looks like for one model version.

Built once at training time from the training data and stored with the model version (an
MLflow artifact, or a JSON file at ``DRIFTLINE_DRIFT_REFERENCE_PATH``). It keeps only
summaries, never rows: per numeric feature the quantile bin edges, the counts and mean
value of each bin, moments and a robust scale; per categorical feature the category
counts; the same for the model's predicted class and probability. Every live window is
counted on these very bins, which is what makes window sketches mergeable and the
statistics identical whatever the number of partitions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from stream.stats.exceptions import ProfileError
from stream.stats.grid import CategoryTable, NumericGrid
from stream.stats.labels import as_labels

PROFILE_FORMAT = 1
#: IQR of a normal distribution in standard deviations: IQR / 1.349 is a robust sigma.
IQR_PER_SIGMA = 1.349


class Moments(BaseModel):
    """Count, mean, population variance, min and max of a feature's present values."""

    model_config = ConfigDict(frozen=True)

    count: int
    mean: float
    variance: float
    min: float
    max: float


class NumericFeatureProfile(BaseModel):
    """One numeric feature on its reference quantile grid.

    Bin ``j`` is ``(edges[j-1], edges[j]]``; the first bin is open to minus infinity and
    the last to plus infinity, so no live value falls outside the grid.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    edges: list[float]
    counts: list[int]
    bin_means: list[float] = Field(
        description="Mean reference value in each bin: where the bin's mass sits, used as "
        "its location by the binned Wasserstein distance."
    )
    moments: Moments
    scale: float = Field(
        description="Robust sigma (IQR / 1.349; the std when the IQR is 0; 1 when both are) "
        "that normalises the Wasserstein distance."
    )
    missing: int = 0


class CategoricalFeatureProfile(BaseModel):
    """One categorical feature (or the predicted class): counts per category label."""

    model_config = ConfigDict(frozen=True)

    name: str
    categories: list[str]
    counts: list[int]
    missing: int = 0


class ReferenceProfile(BaseModel):
    """Summaries of the training data of one model version (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    format: int = PROFILE_FORMAT
    reference_id: str = ""
    numeric: list[NumericFeatureProfile] = Field(default_factory=list)
    categorical: list[CategoricalFeatureProfile] = Field(default_factory=list)
    prediction: CategoricalFeatureProfile | None = None
    probability: NumericFeatureProfile | None = None
    importances: dict[str, float] = Field(
        default_factory=dict,
        description="Weight of each feature in drift_score (e.g. the model's feature "
        "importances); features not named weigh 1.",
    )
    calibration: dict[str, Any] | None = Field(
        default=None, description="A Calibration (stream.stats.calibration), as JSON."
    )
    metadata: dict[str, str] = Field(default_factory=dict)

    _numeric_grid: NumericGrid = PrivateAttr()
    _category_table: CategoryTable = PrivateAttr()
    _prediction_table: CategoryTable | None = PrivateAttr(default=None)
    _probability_grid: NumericGrid | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        """Compile the numpy arrays every sketch and score of this profile shares."""
        if self.format != PROFILE_FORMAT:
            raise ProfileError(f"profile format {self.format} is not {PROFILE_FORMAT}")
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ProfileError(f"duplicate feature names in profile: {names}")
        if not self.reference_id:
            object.__setattr__(self, "reference_id", self.content_id())
        self._numeric_grid = NumericGrid.from_profiles(self.numeric)
        self._category_table = CategoryTable.from_profiles(self.categorical)
        if self.prediction is not None:
            self._prediction_table = CategoryTable.from_profiles([self.prediction])
        if self.probability is not None:
            self._probability_grid = NumericGrid.from_profiles([self.probability])

    # -- views --------------------------------------------------------------------------

    @property
    def numeric_names(self) -> list[str]:
        """Numeric feature names, in the column order sketches expect."""
        return [f.name for f in self.numeric]

    @property
    def categorical_names(self) -> list[str]:
        """Categorical feature names, in the column order sketches expect."""
        return [f.name for f in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        """Every input feature: numeric first, then categorical."""
        return self.numeric_names + self.categorical_names

    @property
    def numeric_grid(self) -> NumericGrid:
        """The numeric features' bins as numpy arrays."""
        return self._numeric_grid

    @property
    def category_table(self) -> CategoryTable:
        """The categorical features' categories as numpy arrays."""
        return self._category_table

    @property
    def prediction_table(self) -> CategoryTable | None:
        """The predicted class's categories, when the profile has them."""
        return self._prediction_table

    @property
    def probability_grid(self) -> NumericGrid | None:
        """The probability's bins, when the profile has them."""
        return self._probability_grid

    def weights(self, names: Sequence[str]) -> npt.NDArray[np.float64]:
        """Importance weight of each named feature (1 when not given)."""
        return np.array([float(self.importances.get(n, 1.0)) for n in names], dtype=float)

    def content_id(self) -> str:
        """A stable id from the profile's content: same data and bins, same id."""
        body = self.model_dump(
            mode="json", exclude={"reference_id", "calibration", "metadata", "format"}
        )
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return f"ref-{digest[:16]}"

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON (the MLflow artifact / DRIFTLINE_DRIFT_REFERENCE_PATH)."""
        target = Path(path)
        target.write_text(self.model_dump_json(indent=1))
        return target

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile JSON written by :meth:`save`."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read reference profile {path}: {exc}") from exc

    # -- construction -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        data: npt.ArrayLike,
        feature_names: Sequence[str],
        *,
        categorical_columns: Sequence[str] = (),
        predicted: npt.ArrayLike | None = None,
        probability: npt.ArrayLike | None = None,
        importances: Mapping[str, float] | None = None,
        bins: int = 20,
        metadata: Mapping[str, str] | None = None,
    ) -> ReferenceProfile:
        """Profile training data given as a matrix whose columns are ``feature_names``.

        :param data: ``(n, len(feature_names))`` rows; NaN (or ``None``) marks a missing
            value. Columns named in ``categorical_columns`` are read as labels.
        :param predicted: the model's predicted class per row (prediction drift).
        :param probability: one probability per row: the positive class's for a binary
            classifier, the predicted class's (max) for a multi-class one.
        :param bins: quantile bins per numeric feature (ties can leave fewer).
        """
        matrix = np.asarray(data, dtype=object if categorical_columns else None)
        names = list(feature_names)
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise ProfileError(
                f"data has shape {matrix.shape}, expected (rows, {len(names)}) for {names}"
            )
        unknown = set(categorical_columns) - set(names)
        if unknown:
            raise ProfileError(f"categorical columns not among the features: {sorted(unknown)}")
        numeric = [
            numeric_feature_profile(name, _as_float(matrix[:, i]), bins)
            for i, name in enumerate(names)
            if name not in categorical_columns
        ]
        categorical = [
            categorical_feature_profile(name, matrix[:, i])
            for i, name in enumerate(names)
            if name in categorical_columns
        ]
        return cls(
            numeric=numeric,
            categorical=categorical,
            prediction=(
                None if predicted is None else categorical_feature_profile("prediction", predicted)
            ),
            probability=(
                None
                if probability is None
                else numeric_feature_profile("probability", _as_float(probability), bins)
            ),
            importances=dict(importances or {}),
            metadata=dict(metadata or {}),
        )

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        categorical_columns: Sequence[str] = (),
        prediction_column: str | None = None,
        probability_column: str | None = None,
        exclude: Sequence[str] = (),
        bins: int = 20,
    ) -> ReferenceProfile:
        """Profile a CSV of training data (header row; empty cells are missing)."""
        from stream.stats.csv_source import read_csv_columns

        columns = read_csv_columns(Path(path))
        for wanted in (prediction_column, probability_column):
            if wanted is not None and wanted not in columns:
                raise ProfileError(f"{path}: column {wanted!r} not in header {sorted(columns)}")
        skip = {prediction_column, probability_column, *exclude}
        names = [n for n in columns if n not in skip]
        if not names:
            raise ProfileError(f"{path}: no feature columns")
        matrix = np.empty((len(columns[names[0]]), len(names)), dtype=object)
        for j, name in enumerate(names):
            cells = columns[name]
            matrix[:, j] = (
                _column(columns, name)
                if name in categorical_columns
                else _parse_floats(path, name, cells)
            )
        return cls.build(
            matrix,
            names,
            categorical_columns=categorical_columns,
            predicted=(
                None
                if prediction_column is None
                else np.array(_column(columns, prediction_column), dtype=object)
            ),
            probability=(
                None
                if probability_column is None
                else _parse_floats(path, probability_column, columns[probability_column])
            ),
            bins=bins,
            metadata={"source": Path(path).name},
        )


def numeric_feature_profile(
    name: str, values: npt.NDArray[np.float64], bins: int
) -> NumericFeatureProfile:
    """Quantile grid, bin counts and means, moments and robust scale of one column."""
    if bins < 2:
        raise ProfileError(f"bins must be at least 2, got {bins}")
    present = values[np.isfinite(values)]
    if present.size == 0:
        raise ProfileError(f"feature {name!r} has no finite values")
    edges = np.unique(np.quantile(present, np.arange(1, bins) / bins))
    index = np.searchsorted(edges, present, side="left")
    counts = np.bincount(index, minlength=edges.size + 1)
    sums = np.asarray(np.bincount(index, weights=present, minlength=edges.size + 1), dtype=float)
    means = _bin_locations(edges, counts, sums)
    q25, q75 = np.quantile(present, [0.25, 0.75])
    std = float(present.std())
    scale = (q75 - q25) / IQR_PER_SIGMA if q75 > q25 else (std if std > 0 else 1.0)
    return NumericFeatureProfile(
        name=name,
        edges=edges.tolist(),
        counts=counts.tolist(),
        bin_means=means.tolist(),
        moments=Moments(
            count=int(present.size),
            mean=float(present.mean()),
            variance=float(present.var()),
            min=float(present.min()),
            max=float(present.max()),
        ),
        scale=float(scale),
        missing=int(values.size - present.size),
    )


def categorical_feature_profile(name: str, values: npt.ArrayLike) -> CategoricalFeatureProfile:
    """Category labels (sorted) and their counts of one column."""
    labels = as_labels(values)
    present = [label for label in labels.tolist() if label is not None]
    if not present:
        raise ProfileError(f"feature {name!r} has no values")
    categories, counts = np.unique(np.array(present, dtype=str), return_counts=True)
    return CategoricalFeatureProfile(
        name=name,
        categories=categories.tolist(),
        counts=counts.tolist(),
        missing=int(labels.size - len(present)),
    )


def _bin_locations(
    edges: npt.NDArray[np.float64], counts: npt.NDArray[np.intp], sums: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mean of each bin; an empty bin sits at its midpoint (or at its only finite edge)."""
    bounds_low = np.concatenate([[edges[0]], edges])
    bounds_high = np.concatenate([edges, [edges[-1]]])
    middle = (bounds_low + bounds_high) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), middle)
    return np.maximum.accumulate(means)


def _as_float(column: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(column)
    if array.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in array.tolist()], dtype=float)
    return array.astype(float).ravel()


def _parse_floats(path: str | Path, name: str, cells: list[str]) -> npt.NDArray[np.float64]:
    try:
        return np.array([float(c) if c.strip() else np.nan for c in cells], dtype=float)
    except ValueError as exc:
        raise ProfileError(
            f"{path}: column {name!r} is not numeric ({exc}); list it as categorical"
        ) from exc


def _column(columns: dict[str, list[str]], name: str) -> list[str | None]:
    if name not in columns:
        raise ProfileError(f"column {name!r} not in the CSV header: {sorted(columns)}")
    return [c if c.strip() else None for c in columns[name]]
