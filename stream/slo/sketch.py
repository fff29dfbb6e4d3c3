"""Latency quantiles with a bounded relative error that merge exactly: a DDSketch.

DDSketch (Masson, Rim, Lee, VLDB 2019; the ``ddsketch`` package by Datadog) maps a value
``v > 0`` to the bucket ``ceil(log_gamma(v))`` with ``gamma = (1 + a) / (1 - a)``; every
quantile it returns is within relative error ``a`` of the true order statistic. Its
state is an integer count per bucket, so merging two sketches is adding counts: a
window split over partitions gives the very same sketch, and the same quantiles, as
one pass.

Why the batch path: ``DDSketch.add`` is a Python call per value (a logarithm and a
store update, ~2 us). A window of thousands of requests has a few hundred distinct
buckets at most (0.1 ms to 100 s is ~700 buckets at 1 %), so :meth:`LatencySketch.update`
computes the bucket of every value with numpy, counts them with ``bincount`` and adds
each bucket once, with its count as the weight, at the bucket's representative value
(which the library maps back to the same bucket). ``bench/bench_slo_processor.py``
measures the difference; ``tests/unit/test_slo_sketch.py`` checks the accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

FloatArray = npt.NDArray[np.float64]

#: Quantiles the SLO processor reports (p50, p95, p99).
REPORTED: tuple[float, ...] = (0.5, 0.95, 0.99)


class LatencySketch:
    """Latencies (ms) of one window; quantiles within ``relative_accuracy`` of exact.

    It is ``ddsketch.DDSketch`` (logarithmic mapping, unbounded dense stores: nothing
    is ever collapsed, so merges stay exact), built from its parts so the batch path
    can hold the mapping and the positive store.

    :param relative_accuracy: DDSketch's alpha; 0.01 means every quantile is within 1 %.

    >>> s = LatencySketch(0.01)
    >>> s.update(np.arange(1.0, 101.0))
    >>> round(s.quantile(0.5))
    50
    """

    def __init__(self, relative_accuracy: float = 0.01) -> None:
        self.relative_accuracy = relative_accuracy
        self.mapping = LogarithmicMapping(relative_accuracy)
        self.store = DenseStore()
        self.sketch = BaseDDSketch(self.mapping, self.store, DenseStore(), 0.0)
        # LogarithmicMapping.key(v) = ceil(log2(v) * multiplier), the same arithmetic
        gamma_mantissa = 2 * relative_accuracy / (1 - relative_accuracy)
        self._multiplier = (1 / math.log1p(gamma_mantissa)) * math.log(2)
        self._min_positive = float(self.mapping.min_possible)

    @property
    def count(self) -> int:
        """Values added (merged ones included)."""
        return round(float(self.sketch.count))

    def keys(self, latency_ms: FloatArray) -> npt.NDArray[np.int64]:
        """The bucket of each positive value (what ``mapping.key`` computes, vectorised)."""
        return np.ceil(np.log2(latency_ms) * self._multiplier).astype(np.int64)

    def update(self, latency_ms: FloatArray) -> None:
        """Add a batch of latencies (one bucket update per distinct bucket, not per value)."""
        values = np.asarray(latency_ms, dtype=np.float64)
        if values.size == 0:
            return
        if not np.isfinite(values).all():
            # The batch decoder dead-letters such events; reaching here is a caller's bug,
            # and binning inf would overflow the bucket keys into a huge allocation.
            bad = values[~np.isfinite(values)][:3].tolist()
            raise ValueError(f"latencies must be finite; got {bad} in a batch of {values.size}")
        positive = values > self._min_positive
        if not positive.all():  # zeros (and invalid negatives): the library's own path
            for value in values[~positive].tolist():
                self.sketch.add(max(value, 0.0))
            values = values[positive]
            if values.size == 0:
                return
        keys = self.keys(values)
        low = int(keys.min())
        counts = np.bincount(keys - low)
        for offset in np.flatnonzero(counts).tolist():
            self.sketch.add(self.mapping.value(low + offset), float(counts[offset]))

    def merge(self, other: LatencySketch) -> LatencySketch:
        """Add ``other``'s counts into this sketch (exact); return self."""
        self.sketch.merge(other.sketch)
        return self

    def quantile(self, q: float) -> float:
        """The ``q``-quantile in ms (the order statistic at rank ``q * (n - 1)``); 0 if empty."""
        if self.sketch.count == 0:
            return 0.0
        value = self.sketch.get_quantile_value(q)
        return 0.0 if value is None else float(value)

    def buckets(self) -> dict[int, float]:
        """Positive bucket key -> count (for exact-merge tests and debugging)."""
        return {self.store.offset + i: c for i, c in enumerate(self.store.bins) if c}
