"""Per-variant performance of one window: estimated from confidence, realised from labels.

Until labels arrive a window's accuracy is **estimated** from the model's probabilities
(confidence-based performance estimation): the mean over predictions of the probability
of the predicted class, ``max(p, 1 - p)`` for a binary model given the positive class's
probability ``p``, the largest probability for a multi-class one. For a calibrated model
that is the expected accuracy. Joined FeedbackEvents (:mod:`stream.feedback_join`) add
the **realised** accuracy and error rate. Everything is an integer count or an integer
(fixed-point) sum, so two partial states merge exactly and associatively
(:meth:`WindowPerformance.merge`: what a sliding window built from tumbling ones, and
the merge step of the partitioned drift processor, need): the estimated accuracy of a
window is bit-for-bit the same however its events were cut into batches, partitions and
instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import VARIANTS

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int8]

#: Fixed-point scale of :attr:`VariantTally.confidence_sum`: each confidence (in [0, 1])
#: is stored as ``round(confidence * 2**32)``. Resolution 2.3e-10 per prediction (far
#: below anything an accuracy estimate can mean); an int64 holds 2**31 predictions of
#: one variant in one window before it could overflow (Python ints never do; the wire
#: format, ``schemas/avro/drift_partial.avsc``, carries a long).
CONFIDENCE_SCALE_BITS = 32
CONFIDENCE_SCALE = 1 << CONFIDENCE_SCALE_BITS


@dataclass(slots=True)
class VariantTally:
    """Counts and sums of one variant in one window.

    ``confidence_sum`` is a fixed-point integer (confidences times
    :data:`CONFIDENCE_SCALE`, each rounded on its own), not a float: float addition is
    not associative, so a float sum of the same predictions differs in its last bits
    with the batches and partitions they came in, and so would the estimated accuracy
    of a window merged from partials. Integer sums are exact in any order.
    """

    predictions: int = 0
    confidence_sum: int = 0
    confidence_count: int = 0
    labelled: int = 0
    correct: int = 0

    def merge(self, other: VariantTally) -> None:
        """Add ``other``'s counts to these."""
        self.predictions += other.predictions
        self.confidence_sum += other.confidence_sum
        self.confidence_count += other.confidence_count
        self.labelled += other.labelled
        self.correct += other.correct

    @property
    def estimated_accuracy(self) -> float | None:
        """Mean confidence of the predictions that had probabilities (None: none had).

        One correctly rounded division of two integers (Python's int / int), so equal
        tallies give the bit-identical float.
        """
        if not self.confidence_count:
            return None
        return self.confidence_sum / (self.confidence_count << CONFIDENCE_SCALE_BITS)

    @property
    def accuracy(self) -> float | None:
        """Share of labelled predictions that were right (None before any label)."""
        return self.correct / self.labelled if self.labelled else None


@dataclass(slots=True)
class WindowPerformance:
    """Per-variant tallies of one window (variant name -> :class:`VariantTally`)."""

    variants: dict[str, VariantTally] = field(default_factory=dict)

    def tally(self, variant: str) -> VariantTally:
        """The variant's tally, created empty on first use."""
        found = self.variants.get(variant)
        if found is None:
            found = self.variants[variant] = VariantTally()
        return found

    def add_predictions(self, variant: CodeArray, confidence: FloatArray | None) -> None:
        """Count predictions: ``variant`` codes (:data:`VARIANTS`) and each prediction's
        confidence (NaN: no probabilities; None: none of them has any)."""
        counts = np.bincount(variant.astype(np.int64), minlength=len(VARIANTS))
        present = None if confidence is None else ~np.isnan(confidence)
        for code in np.flatnonzero(counts).tolist():
            tally = self.tally(VARIANTS[code])
            tally.predictions += int(counts[code])
            if confidence is not None and present is not None:
                mine = present & (variant == code)
                tally.confidence_count += int(mine.sum())
                tally.confidence_sum += fixed_point_sum(confidence[mine])

    def add_label(self, variant: str, correct: bool) -> None:
        """Count one joined label."""
        tally = self.tally(variant)
        tally.labelled += 1
        tally.correct += int(correct)

    def merge(self, other: WindowPerformance) -> WindowPerformance:
        """Add ``other``'s tallies to these; returns self."""
        for name, tally in other.variants.items():
            self.tally(name).merge(tally)
        return self

    def drift_score_fields(self) -> dict[str, Any]:
        """The DriftScore fields this fills: ``performance`` (one entry per variant, in
        :data:`VARIANTS` order), ``estimated_accuracy``, ``accuracy``, ``labelled_count``."""
        total = VariantTally()
        performance = []
        for name in sorted(self.variants, key=_variant_order):
            tally = self.variants[name]
            total.merge(tally)
            accuracy = tally.accuracy
            performance.append(
                {
                    "variant": name,
                    "prediction_count": tally.predictions,
                    "estimated_accuracy": tally.estimated_accuracy,
                    "labelled_count": tally.labelled,
                    "accuracy": accuracy,
                    "error_rate": None if accuracy is None else 1.0 - accuracy,
                }
            )
        return {
            "performance": performance,
            "estimated_accuracy": total.estimated_accuracy,
            "accuracy": total.accuracy,
            "labelled_count": total.labelled,
        }


def _variant_order(name: str) -> tuple[int, str]:
    return (VARIANTS.index(name) if name in VARIANTS else len(VARIANTS), name)


def fixed_point_sum(confidence: FloatArray) -> int:
    """Sum of ``confidence`` values (no NaN) in units of ``1 / CONFIDENCE_SCALE``.

    Each value is scaled (exact: a power of two) and rounded half to even on its own
    before the integer sum, so the result does not depend on how values are grouped.
    Values are clipped to [0, 1] first: a confidence is a probability, and a producer
    sending a probability of 1e300 must not overflow the window's sum.
    """
    scaled = np.rint(np.clip(confidence, 0.0, 1.0) * CONFIDENCE_SCALE).astype(np.int64)
    return int(scaled.sum(dtype=np.int64))


def confidence(matrix: FloatArray) -> FloatArray:
    """Probability of the predicted class per row of a probability matrix (NaN = absent).

    One column (only the positive class given): ``max(p, 1 - p)``; several: the row's
    largest probability. Rows without any probability give NaN.
    """
    if matrix.shape[1] == 0:
        return np.full(matrix.shape[0], np.nan)
    if matrix.shape[1] == 1:
        p = matrix[:, 0]
        return np.maximum(p, 1.0 - p)
    present = ~np.isnan(matrix)
    largest = np.where(present, matrix, -np.inf).max(axis=1)
    out: FloatArray = np.where(present.any(axis=1), largest, np.nan)
    return out
