"""A loaded model version and the one call the request path makes on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Prediction:
    """One row's answer: class label and the probability of that label."""

    label: int
    probability: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version in memory.

    :param name: registered model name.
    :param version: registry version number, as a string.
    :param alias: the alias it was loaded through (``champion``).
    :param features: feature names in the order the estimator expects.
    :param estimator: a fitted scikit-learn classifier (``predict_proba``, ``classes_``).
    """

    name: str
    version: str
    alias: str
    features: tuple[str, ...]
    estimator: Any

    def predict(self, rows: list[list[float]]) -> list[Prediction]:
        """Predict every row with one vectorised call."""
        matrix: npt.NDArray[np.float64] = np.asarray(rows, dtype=np.float64)
        proba = self.estimator.predict_proba(matrix)
        classes = [str(c) for c in self.estimator.classes_]
        best = proba.argmax(axis=1)
        out = []
        for i, row in enumerate(proba.tolist()):
            k = int(best[i])
            out.append(Prediction(int(classes[k]), row[k], dict(zip(classes, row, strict=True))))
        return out
