"""Online change-point detectors (river) that flag drift between window closes.

Per (model, version) one :class:`OnlineDetectors` keeps a river ``PageHinkley`` on the
prediction mean (the positive class's probability, else the predicted class as a
number) and one ``PageHinkley`` per numeric feature. They are fed **block means**, not
single events: events are cut into consecutive blocks of ``block_size`` events (in the
order they are counted, carried across consume batches, so the blocks do not depend on
where batches end), and each block's mean is standardised against the reference,
``z = (block mean - reference mean) / (reference sd / sqrt(values in block))``. With no
drift ``z`` is about N(0, 1) for every feature and any block size, so one set of
Page-Hinkley parameters fits every feature. Why Page-Hinkley per feature and not KSWIN,
and what that costs: ``docs/decisions.md`` (2026-11-25, online detectors).

A river ``ADWIN`` watches the **error stream**: one 0/1 update per prediction joined to
its FeedbackEvent (:meth:`OnlineDetectors.update_errors`, in join order), stamped with
the prediction's event time.

The detectors' state is reported per closed window as a :class:`ChangePointReport`
(pure data): the processor logs it, counts change points in Prometheus and writes it
into the DriftScore's ``change_points`` (:meth:`ChangePointReport.records`). It is not
checkpointed: after a restart the detectors restart on the replayed events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from river.drift import ADWIN, PageHinkley

from stream.stats import ReferenceProfile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PREDICTION_DETECTOR = "page_hinkley_prediction"
FEATURE_DETECTOR = "page_hinkley_feature"
PREDICTION_FEATURE = "prediction"
ERROR_DETECTOR = "adwin_error"
ERROR_FEATURE = "error"
#: How each detector and target is named in the DriftScore's ``change_points``.
_RECORD_DETECTOR = {
    PREDICTION_DETECTOR: "page_hinkley",
    FEATURE_DETECTOR: "page_hinkley",
    ERROR_DETECTOR: "adwin",
}
_RECORD_TARGET = {PREDICTION_FEATURE: "probability"}


@dataclass(frozen=True, slots=True)
class PageHinkleyParams:
    """Page-Hinkley parameters for N(0, 1) block z-scores.

    Defaults measured on 200,000 N(0, 1) updates: no false change point; a 3 sd shift
    is flagged after about 15 blocks. ``alpha=1`` (no forgetting): river's default
    0.9999 gave 5-11 false change points on the same stream.
    """

    min_instances: int = 30
    delta: float = 1.0
    threshold: float = 30.0
    alpha: float = 1.0

    def make(self) -> PageHinkley:
        """A fresh two-sided detector."""
        return PageHinkley(
            min_instances=self.min_instances,
            delta=self.delta,
            threshold=self.threshold,
            alpha=self.alpha,
            mode="both",
        )


@dataclass(frozen=True, slots=True)
class AdwinParams:
    """ADWIN parameters for the 0/1 error stream (river's defaults: ``delta`` is the
    confidence of a cut; smaller means fewer false change points and later ones)."""

    delta: float = 0.002
    clock: int = 32
    grace_period: int = 10
    min_window_length: int = 5

    def make(self) -> ADWIN:
        """A fresh detector."""
        return ADWIN(  # type: ignore[no-untyped-call]
            delta=self.delta,
            clock=self.clock,
            grace_period=self.grace_period,
            min_window_length=self.min_window_length,
        )


@dataclass(frozen=True, slots=True)
class DetectorState:
    """One detector's state at a window close: change points since the previous close of
    the (model, version), and the event time of the newest change point ever seen."""

    detector: str
    feature: str
    drift_detected: bool
    change_points: int
    last_change_ms: int | None
    #: The detector's current statistic when it has one (ADWIN: the error rate estimate).
    statistic: float | None = None

    def record(self) -> dict[str, object]:
        """This state as a DriftScore ``ChangePoint`` (schemas/avro/drift_score.avsc)."""
        return {
            "detector": _RECORD_DETECTOR.get(self.detector, self.detector),
            "target": _RECORD_TARGET.get(self.feature, self.feature),
            "change_points": self.change_points,
            "last_change_ms": self.last_change_ms,
            "statistic": self.statistic,
        }


@dataclass(frozen=True, slots=True)
class ChangePointReport:
    """Every detector of a (model, version) at a window close: what the processor logs."""

    model: str
    version: str
    window_start: int
    window_end: int
    states: tuple[DetectorState, ...]

    @property
    def drift_detected(self) -> bool:
        """True when any detector flagged a change point since the last close."""
        return any(s.drift_detected for s in self.states)

    @property
    def change_points(self) -> int:
        """Change points of all detectors since the last close."""
        return sum(s.change_points for s in self.states)

    def flagged(self) -> list[DetectorState]:
        """The detectors that flagged something."""
        return [s for s in self.states if s.drift_detected]

    def records(self) -> list[dict[str, object]]:
        """Every detector's state as the DriftScore's ``change_points``."""
        return [s.record() for s in self.states]


@dataclass(slots=True)
class _Tracked:
    detector: PageHinkley | ADWIN
    updates: int = 0
    #: Event times of change points not yet reported (rare: the detector resets after each).
    pending: list[int] = field(default_factory=list)
    last_change_ms: int | None = None


@dataclass(slots=True)
class _Block:
    """Sums of the block being filled (carried across batches)."""

    rows: int = 0
    sums: FloatArray = field(default_factory=lambda: np.zeros(0))
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class OnlineDetectors:
    """Page-Hinkley detectors of one (model, version) on standardised block means.

    :param profile: the version's reference (means and standard deviations).
    :param block_size: events per block (one detector update per block and column).
    :param params: Page-Hinkley parameters.
    :param adwin: ADWIN parameters of the error detector.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        block_size: int = 500,
        params: PageHinkleyParams | None = None,
        adwin: AdwinParams | None = None,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size
        self.params = params or PageHinkleyParams()
        names = [f.name for f in profile.numeric]
        means = [f.moments.mean for f in profile.numeric]
        sds = [float(np.sqrt(max(f.moments.variance, 0.0))) for f in profile.numeric]
        prediction = profile.probability
        self.has_prediction = prediction is not None
        if prediction is not None:
            names.append(PREDICTION_FEATURE)
            means.append(prediction.moments.mean)
            sds.append(float(np.sqrt(max(prediction.moments.variance, 0.0))))
        self.names = names
        self.ref_mean = np.array(means, dtype=float)
        self.ref_sd = np.array(sds, dtype=float)
        self.tracked = [_Tracked(self.params.make()) for _ in names]
        self._block = _Block(0, np.zeros(len(names)), np.zeros(len(names), dtype=np.int64))
        self.error = _Tracked((adwin or AdwinParams()).make())

    def update(
        self,
        numeric: FloatArray,
        event_time: IntArray,
        prediction: FloatArray | None = None,
    ) -> None:
        """Count ``n`` events (in order): ``numeric`` is ``(n, k)`` in the profile's
        numeric order (NaN = missing), ``prediction`` ``(n,)`` (NaN = none)."""
        n = len(event_time)
        if n == 0:
            return
        values = np.asarray(numeric, dtype=float).reshape(n, -1)
        if self.has_prediction:
            column = np.full(n, np.nan) if prediction is None else prediction
            values = np.column_stack([values, column])
        start = 0
        block = self._block
        if block.rows:
            take = min(self.block_size - block.rows, n)
            self._add(values[:take])
            start = take
            if block.rows == self.block_size:
                self._close_block(int(event_time[take - 1]))
        full = (n - start) // self.block_size
        if full:
            chunk = values[start : start + full * self.block_size].reshape(
                full, self.block_size, -1
            )
            present = ~np.isnan(chunk)
            sums = np.where(present, chunk, 0.0).sum(axis=1)
            counts = present.sum(axis=1)
            ends = event_time[start + self.block_size - 1 :: self.block_size][:full]
            for b in range(full):
                self._observe(sums[b], counts[b], int(ends[b]))
            start += full * self.block_size
        if start < n:
            self._add(values[start:])

    def _add(self, values: FloatArray) -> None:
        present = ~np.isnan(values)
        self._block.sums += np.where(present, values, 0.0).sum(axis=0)
        self._block.counts += present.sum(axis=0)
        self._block.rows += len(values)

    def _close_block(self, end_ms: int) -> None:
        block = self._block
        self._observe(block.sums, block.counts, end_ms)
        self._block = _Block(0, np.zeros(len(self.names)), np.zeros(len(self.names), np.int64))

    def _observe(self, sums: FloatArray, counts: IntArray, end_ms: int) -> None:
        """One detector update per column with the block's z-score."""
        safe = np.maximum(counts, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (sums / safe - self.ref_mean) / (self.ref_sd / np.sqrt(safe))
        usable = (counts > 0) & (self.ref_sd > 0) & np.isfinite(z)
        for j in np.flatnonzero(usable).tolist():
            tracked = self.tracked[j]
            tracked.detector.update(float(z[j]))  # type: ignore[no-untyped-call]
            tracked.updates += 1
            if tracked.detector.drift_detected:
                tracked.pending.append(end_ms)

    def update_errors(self, errors: npt.NDArray[np.bool_], event_time: IntArray) -> None:
        """Feed joined predictions to ADWIN: ``errors[i]`` True when prediction ``i`` was
        wrong, ``event_time[i]`` its event time (what a change point is stamped with)."""
        tracked = self.error
        for wrong, at in zip(errors.tolist(), event_time.tolist(), strict=True):
            tracked.detector.update(1.0 if wrong else 0.0)  # type: ignore[no-untyped-call]
            tracked.updates += 1
            if tracked.detector.drift_detected:
                tracked.pending.append(int(at))

    def take(self, model: str, version: str, start_ms: int, end_ms: int) -> ChangePointReport:
        """The state at the close of the window ``[start_ms, end_ms)``.

        Reports the change points whose block ended before ``end_ms`` and not reported
        at an earlier close: attribution is by event time, so it does not depend on how
        far the detectors had read past the window when it closed.
        """
        states = []
        for name, tracked in zip(self.names, self.tracked, strict=True):
            detector = PREDICTION_DETECTOR if name == PREDICTION_FEATURE else FEATURE_DETECTOR
            states.append(_take(tracked, detector, name, end_ms, None))
        if self.error.updates:
            estimate = float(self.error.detector.estimation)  # type: ignore[union-attr]
            states.append(_take(self.error, ERROR_DETECTOR, ERROR_FEATURE, end_ms, estimate))
        return ChangePointReport(model, version, start_ms, end_ms, tuple(states))


def _take(
    tracked: _Tracked, detector: str, feature: str, end_ms: int, statistic: float | None
) -> DetectorState:
    """One detector's state at a close: its change points stamped before ``end_ms``."""
    due = [t for t in tracked.pending if t < end_ms]
    if due:
        tracked.pending = [t for t in tracked.pending if t >= end_ms]
        tracked.last_change_ms = max(due)
    return DetectorState(
        detector=detector,
        feature=feature,
        drift_detected=bool(due),
        change_points=len(due),
        last_change_ms=tracked.last_change_ms,
        statistic=statistic,
    )
