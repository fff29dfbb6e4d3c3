"""Synthetic breast-cancer traffic with a known change at a known event: the scenarios.

One generator serves three users, so what they test is the same traffic: the detection
quality regression tests (``tests/regression/test_drift_detection_quality.py``, which
pin how fast each change is flagged), ``driftline replay --scenario NAME`` and
``make demo``. Every scenario draws rows with replacement from the source rows with the
caller's seeded generator (the draw order is part of the contract: the regression tests'
measured delays depend on it), then changes what happens from ``onset`` on:

=================  ========================================================================
``no-drift``       nothing changes
``sudden``         features 5-9 (``mean compactness`` .. ``mean fractal dimension``) jump by
                   SUDDEN_SHIFT_SD of their standard deviation at ``onset``
``gradual``        every feature moves from 0 to GRADUAL_SHIFT_SD standard deviations over
                   ``ramp`` events after ``onset``, then stays there
``prediction-only`` inputs unchanged; the model's logit is pushed by PREDICTION_LOGIT_SHIFT
                   (a serving bug): only the prediction drifts
``concept``        inputs unchanged; the true label flips (seen only through feedback)
=================  ========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ScenarioName = Literal["no-drift", "sudden", "gradual", "prediction-only", "concept"]
#: The built-in scenarios, in the order the docs list them.
SCENARIOS: Final[tuple[str, ...]] = get_args(ScenarioName)

#: Columns ``sudden`` shifts (5 of the 30 breast-cancer features) and by how much.
SUDDEN_COLUMNS: Final = slice(5, 10)
SUDDEN_SHIFT_SD: Final = 1.5
#: How far ``gradual`` moves every feature, in standard deviations, once its ramp is over.
GRADUAL_SHIFT_SD: Final = 1.0
#: The logit shift of ``prediction-only``: a serving bug that makes almost every
#: prediction positive while the inputs stay the same.
PREDICTION_LOGIT_SHIFT: Final = 8.0


@dataclass(frozen=True)
class ScenarioTraffic:
    """``count`` events of one scenario.

    :param rows: index of the source row each event was drawn from (its true label).
    :param features: the event's features, ``(count, n_features)``, the change applied.
    :param onset: index of the first changed event.
    :param logit_shift: per event, the shift of the model's logit (``prediction-only``),
        else None.
    :param label_flipped: per event, whether its true label is flipped (``concept``),
        else None.
    """

    name: str
    rows: IntArray
    features: FloatArray
    onset: int
    logit_shift: FloatArray | None = None
    label_flipped: BoolArray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def labels(self, truth: npt.NDArray[np.integer]) -> IntArray:
        """The true label of each event: ``truth`` of its row, flipped where ``concept``
        flipped it."""
        labels = np.asarray(truth, dtype=np.int64)[self.rows]
        if self.label_flipped is not None:
            labels = np.where(self.label_flipped, 1 - labels, labels)
        return labels


def draw_rows(source: FloatArray, count: int, rng: np.random.Generator) -> IntArray:
    """``count`` row indices drawn with replacement (the one draw every scenario makes)."""
    return rng.integers(0, len(source), count).astype(np.int64)


def generate(
    name: str,
    source: FloatArray,
    count: int,
    onset: int,
    rng: np.random.Generator,
    *,
    ramp: int | None = None,
    noise_sd: float = 0.0,
) -> ScenarioTraffic:
    """The ``name`` scenario: ``count`` events drawn from ``source``, changed from ``onset``.

    :param ramp: events over which ``gradual`` reaches its full shift (default: a fifth
        of the events after onset, at least 1).
    :param noise_sd: Gaussian noise added to every feature, in standard deviations of
        the source (0: rows exactly as in the source). Drawn after the rows.
    :raises ValueError: unknown name (the message lists the known ones) or bad bounds.
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if count < 1 or not 0 <= onset <= count:
        raise ValueError(f"need count >= 1 and 0 <= onset <= count (count {count}, onset {onset})")
    rows = draw_rows(source, count, rng)
    features = source[rows].astype(np.float64, copy=True)
    sd = source.std(axis=0)
    after = np.arange(count) >= onset
    logit_shift = label_flipped = None
    if name == "sudden":
        features[onset:, SUDDEN_COLUMNS] += SUDDEN_SHIFT_SD * sd[SUDDEN_COLUMNS]
    elif name == "gradual":
        span = ramp if ramp is not None else max(1, (count - onset) // 5)
        share = np.clip((np.arange(count) - onset) / span, 0.0, 1.0)
        features += share[:, None] * (GRADUAL_SHIFT_SD * sd)
    elif name == "prediction-only":
        logit_shift = np.where(after, PREDICTION_LOGIT_SHIFT, 0.0)
    elif name == "concept":
        label_flipped = after
    if noise_sd > 0:
        features += rng.normal(0.0, 1.0, features.shape) * (noise_sd * sd)
    return ScenarioTraffic(name, rows, features, onset, logit_shift, label_flipped)


def shift_probability(probability: FloatArray, logit_shift: FloatArray) -> FloatArray:
    """P(class 1) after adding ``logit_shift`` to its logit (what ``prediction-only``
    does to a model's answer)."""
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.asarray(1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + logit_shift))), np.float64)
