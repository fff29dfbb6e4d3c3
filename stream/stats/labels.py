"""Turn categorical values and predicted classes into stable string labels.

Categories travel as strings in InferenceEvents, but a model's predicted class may be an
int, a float (``1.0`` after a JSON round trip) or a string. The same class must map to the
same label on the reference side and the live side, so numbers that are whole become
``"1"`` whatever their type. ``None`` (and NaN) mean *missing* and map to ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt


def as_label(value: Any) -> str | None:
    """The label of one value: whole numbers without a decimal point, ``None`` if missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    return str(value)


def as_labels(values: Iterable[Any] | npt.ArrayLike) -> npt.NDArray[np.object_]:
    """Labels of a column as an object array (``None`` where missing).

    Each distinct value is labelled once (``np.unique`` for numbers and strings, a dict for
    mixed object columns), so the cost per element is a vectorised gather.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        array = array.ravel()
    if array.dtype.kind in "biufUS":
        uniques, inverse = np.unique(array, return_inverse=True)
        labels = np.array([as_label(u) for u in uniques.tolist()], dtype=object)
        return labels[inverse.ravel()] if len(labels) else np.empty(0, dtype=object)
    return np.array([as_label(v) for v in array.tolist()], dtype=object)
