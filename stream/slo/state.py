"""The state of one SLO window: exact counts plus a latency sketch, mergeable exactly."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import OUTCOMES
from stream.slo.burn_rate import WindowCounts
from stream.slo.sketch import REPORTED, LatencySketch

CLIENT_ERROR = OUTCOMES.index("client_error")
SERVER_ERROR = OUTCOMES.index("server_error")


class SloWindowState:
    """Requests of one (model, variant, window): counts by outcome, slow requests,
    versions seen and a :class:`LatencySketch`.

    Every part is an integer count (the sketch's buckets too), so :meth:`merge` of the
    states of any split of the window's events equals the state of one pass.

    :param relative_accuracy: the sketch's relative error bound.
    :param latency_threshold_ms: a request slower than this is slow (latency SLO).
    """

    def __init__(self, relative_accuracy: float, latency_threshold_ms: float) -> None:
        self.sketch = LatencySketch(relative_accuracy)
        self.latency_threshold_ms = latency_threshold_ms
        self.requests = 0
        self.client_errors = 0
        self.server_errors = 0
        self.slow = 0
        self.versions: set[str] = set()

    def update(
        self,
        latency_ms: npt.NDArray[np.float64],
        outcome: npt.NDArray[np.int8],
        versions: Iterable[str],
    ) -> None:
        """Count a batch of requests (``outcome``: indices into ``OUTCOMES``)."""
        by_outcome = np.bincount(outcome.astype(np.int64), minlength=len(OUTCOMES))
        self.requests += len(latency_ms)
        self.client_errors += int(by_outcome[CLIENT_ERROR])
        self.server_errors += int(by_outcome[SERVER_ERROR])
        self.slow += int(np.count_nonzero(latency_ms > self.latency_threshold_ms))
        self.sketch.update(latency_ms)
        self.versions.update(versions)

    def merge(self, other: SloWindowState) -> SloWindowState:
        """Add ``other`` (same settings) into this state; return self."""
        if other.latency_threshold_ms != self.latency_threshold_ms:
            raise ValueError(
                f"cannot merge states with latency thresholds {other.latency_threshold_ms} "
                f"and {self.latency_threshold_ms} ms"
            )
        self.requests += other.requests
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors
        self.slow += other.slow
        self.sketch.merge(other.sketch)
        self.versions |= other.versions
        return self

    @property
    def error_rate(self) -> float:
        """Server errors per request (0 without requests)."""
        return self.server_errors / self.requests if self.requests else 0.0

    @property
    def model_version(self) -> str | None:
        """The version that served the window, None when there were several (or none)."""
        return next(iter(self.versions)) if len(self.versions) == 1 else None

    def quantiles(self) -> dict[float, float]:
        """p50, p95, p99 latency (ms) from the sketch."""
        return {q: self.sketch.quantile(q) for q in REPORTED}

    def counts(self, start_ms: int, end_ms: int) -> WindowCounts:
        """What the burn-rate history keeps of this window."""
        return WindowCounts(start_ms, end_ms, self.requests, self.server_errors, self.slow)
