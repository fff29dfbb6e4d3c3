"""The served task's data contract: the breast-cancer features and their fixed split.

Serving (the built-in datasets ``training``, ``validation`` and ``reference``), retrain
(the reference training data every retrain starts from) and the launcher (the drift
fixtures) must agree on these rows to the bit, so they are declared once, here, as a
contract. Data comes from ``sklearn.datasets.load_breast_cancer`` (it ships inside
scikit-learn; nothing is downloaded). The split is seeded and stratified: ``training``
(75 %) and ``validation`` (25 %), the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

#: The model `make train` builds and serving answers with by default.
DEFAULT_MODEL_NAME: Final = "breast-cancer-classifier"
#: Seed of the training/validation split (and of the drift fixture's noise).
SPLIT_SEED: Final = 20261125
VALIDATION_FRACTION: Final = 0.25
#: Column holding the label in every dataset; never a feature.
TARGET: Final = "target"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@cache
def feature_names() -> tuple[str, ...]:
    """The 30 feature names, in the order the model expects them."""
    return tuple(str(n) for n in load_breast_cancer().feature_names)


@dataclass(frozen=True)
class Split:
    """The fixed training/validation split of the breast-cancer data."""

    features: tuple[str, ...]
    x_train: FloatArray
    y_train: IntArray
    x_validation: FloatArray
    y_validation: IntArray


def load_split() -> Split:
    """The seeded, stratified 75/25 split; identical on every call and machine."""
    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return Split(tuple(str(n) for n in data.feature_names), x_tr, y_tr, x_va, y_va)


#: Hyper-parameters a training request may set: the LogisticRegression of the pipeline,
#: name -> (type, lowest allowed value or None). Anything else is refused up front (HTTP
#: 422 naming it) instead of failing in a worker later.
HYPERPARAMETERS: Final[dict[str, tuple[type, float | None]]] = {
    "C": (float, 1e-6),
    "max_iter": (int, 1),
    "tol": (float, 1e-12),
    "fit_intercept": (bool, None),
}


def check_parameters(parameters: dict[str, object]) -> dict[str, str]:
    """What is wrong with each bad hyper-parameter, by name (empty: all good)."""
    problems: dict[str, str] = {}
    for name, value in parameters.items():
        spec = HYPERPARAMETERS.get(name)
        if spec is None:
            problems[name] = f"unknown; known: {sorted(HYPERPARAMETERS)}"
            continue
        kind, lowest = spec
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            problems[name] = f"must be a {kind.__name__}, got {value!r}"
        elif lowest is not None and not float(value) >= lowest:  # type: ignore[arg-type]
            problems[name] = f"must be at least {lowest:g}, got {value!r}"
    return problems
