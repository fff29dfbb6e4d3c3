"""Map a matrix with named columns onto a profile's column order.

Callers (``/drift/detect``, calibration, the report) hold rows as a matrix plus column
names that need not match the profile: a feature may be absent on either side. Absent
reference features become all-missing columns (reported, never scored); extra columns
are reported and ignored. Only when nothing is shared is it an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.stats.exceptions import BatchShapeError, NoSharedFeaturesError
from stream.stats.profile import ReferenceProfile


@dataclass(frozen=True)
class ProfileColumns:
    """A batch in the profile's layout, plus what did not match."""

    numeric: npt.NDArray[np.float64]
    categorical: npt.NDArray[np.object_]
    missing_features: list[str]
    unknown_features: list[str]


def to_profile_columns(
    profile: ReferenceProfile, data: npt.ArrayLike, feature_names: Sequence[str]
) -> ProfileColumns:
    """Split ``data`` (``(n, len(feature_names))``) into the profile's numeric and
    categorical column order; NaN/None where a reference feature is absent."""
    names = list(feature_names)
    matrix = np.asarray(data, dtype=object if profile.categorical else None)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise BatchShapeError(f"data has shape {matrix.shape}, expected (rows, {len(names)})")
    position = {name: i for i, name in enumerate(names)}
    shared = [n for n in profile.feature_names if n in position]
    if not shared:
        raise NoSharedFeaturesError(profile.feature_names, names)
    rows = matrix.shape[0]
    numeric = np.full((rows, len(profile.numeric)), np.nan)
    for j, name in enumerate(profile.numeric_names):
        if name in position:
            numeric[:, j] = _floats(matrix[:, position[name]])
    categorical = np.full((rows, len(profile.categorical)), None, dtype=object)
    for j, name in enumerate(profile.categorical_names):
        if name in position:
            categorical[:, j] = matrix[:, position[name]]
    reference = set(profile.feature_names)
    return ProfileColumns(
        numeric=numeric,
        categorical=categorical,
        missing_features=[n for n in profile.feature_names if n not in position],
        unknown_features=[n for n in names if n not in reference],
    )


def _floats(column: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    if column.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in column.tolist()])
    return column.astype(float)
