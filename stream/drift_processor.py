"""The drift processor: InferenceEvents in, one DriftScore per closed window out.

Per input partition a :class:`~stream.runtime.windows.PartitionWindows` assigns events
to tumbling event-time windows keyed by (model, version, window start); each window's
state is a :class:`~stream.stats.WindowSketch` on the version's reference profile. When
the watermark closes a window it is scored (:func:`stream.stats.score_window`) and
turned into a DriftScore record keyed by model; when the watermark reaches the end of
a sliding window, the exact merge of the closed tumbling sketches it spans is scored
as a record of its own (``window_kind="sliding"``). Beside each sketch a
:class:`~stream.performance.WindowPerformance` tallies the window's predictions per
variant (estimated accuracy from confidence) and the labels joined to them
(:meth:`DriftProcessor.feedback`, :mod:`stream.feedback_join`). Kafka plumbing lives in
:mod:`stream.runtime.loop`; this class is fed decoded columnar batches, so it can be
driven without a broker (unit tests, benchmarks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import PREDICTION_DOUBLE, PREDICTION_LABEL, InferenceBatch
from stream import drift_metrics as m
from stream.detectors import ChangePointReport, OnlineDetectors
from stream.drift_output import (
    LINEAGE_HEADER,
    NATURAL_KEY_HEADER,
    SLIDING,
    TUMBLING,
    DriftOutput,
    OffsetRange,
    decision_rule,
    drift_output,
)
from stream.feedback_join import FeedbackJoin, Joined, Label
from stream.performance import WindowPerformance, confidence
from stream.profiles import ProfileSource
from stream.runtime.checkpoint import Checkpoint
from stream.runtime.window_plan import WindowPlan
from stream.runtime.windows import PartitionWindows, WindowKey
from stream.stats import DecisionRule, ReferenceProfile, WindowSketch

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
__all__ = [
    "LINEAGE_HEADER",
    "NATURAL_KEY_HEADER",
    "SLIDING",
    "TUMBLING",
    "ClosedShare",
    "DriftOutput",
    "DriftProcessor",
]
#: An input partition as (topic, partition) (``stream.partials.Source`` is its data class).
TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class ClosedShare:
    """A window one partition closed: what a DriftScore (keyed inputs) or a partial
    (partitioned mode, :mod:`stream.partitioned`) is made of."""

    key: WindowKey
    end_ms: int
    kind: str
    source: TopicPartitionKey
    sketch: WindowSketch
    performance: WindowPerformance
    late_event_count: int
    #: Offset ranges (first, last) on the source partition, oldest first.
    ranges: list[tuple[int, int]]
    #: The source partition's detectors at this close (tumbling windows only).
    report: ChangePointReport | None = None

    def lineage(self) -> list[OffsetRange]:
        """The ranges as DriftScore lineage."""
        topic, partition = self.source
        return [OffsetRange(topic, partition, first, last) for first, last in self.ranges]


class DriftProcessor:
    """Windows, sketches and scores for every assigned partition of one input topic.

    :param profiles: reference profile per (model, version).
    :param window_ms: tumbling window length (every model, no sliding windows) unless
        ``plan`` is given.
    :param plan: window sizes per model, sliding windows included
        (:class:`~stream.runtime.window_plan.WindowPlan`).
    :param lateness_ms: allowed lateness of the watermark.
    :param rule: decision rule for profiles without a calibration (calibrated
        profiles use their own).
    :param detector_block_size: events per update of the online change-point
        detectors (:mod:`stream.detectors`); 0 turns them off.
    :param join: joins FeedbackEvents (:meth:`feedback`) to the predictions counted
        here, for realised accuracy and the ADWIN error detector; None: no join.
    :param partitioned: one model's events are spread over many partitions: each
        partition has one watermark for all its models, and online detectors run per
        partition (:mod:`stream.partitioned` turns the closed shares into partials).
    """

    def __init__(
        self,
        profiles: ProfileSource,
        *,
        window_ms: int,
        lateness_ms: int,
        rule: DecisionRule | None = None,
        clock: Callable[[], float] = time.time,
        detector_block_size: int = 500,
        join: FeedbackJoin | None = None,
        plan: WindowPlan | None = None,
        partitioned: bool = False,
    ) -> None:
        self.profiles = profiles
        self.partitioned = partitioned
        self.window_ms = window_ms
        self.plan = plan or WindowPlan.tumbling_only(window_ms)
        self.lateness_ms = lateness_ms
        self.rule = rule or DecisionRule()
        self.clock = clock
        self.partitions: dict[tuple[str, int], PartitionWindows[WindowSketch]] = {}
        #: Per-variant performance of each open window, per partition (beside the sketch).
        self.performance: dict[tuple[str, int], dict[WindowKey, WindowPerformance]] = {}
        #: ... and of closed windows kept for sliding windows.
        self.kept_performance: dict[tuple[str, int], dict[WindowKey, WindowPerformance]] = {}
        self.detector_block_size = detector_block_size
        #: Online change-point detectors per (model, version), and per source partition
        #: too when partitioned (0 block size: none).
        self.detectors: dict[tuple[str, str] | tuple[str, str, str, int], OnlineDetectors] = {}
        self.join = join

    # -- partitions -------------------------------------------------------------------

    def assign(self, topic: str, partition: int, checkpoint: Checkpoint | None) -> None:
        """Start (or restart from ``checkpoint``) a partition's windows."""
        self.partitions[(topic, partition)] = self._windows(checkpoint)

    def _windows(self, checkpoint: Checkpoint | None = None) -> PartitionWindows[WindowSketch]:
        return PartitionWindows(
            self.plan,
            self.lateness_ms,
            self._new_sketch,
            checkpoint,
            watermark="partition" if self.partitioned else "model",
        )

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition (its open windows are rebuilt by whoever gets it next)."""
        self.partitions.pop((topic, partition), None)
        self.performance.pop((topic, partition), None)
        self.kept_performance.pop((topic, partition), None)
        if self.join is not None:  # its models are counted elsewhere now
            self.join.drop_source((topic, partition))
        if self.partitioned:  # its detectors restart with whoever gets it
            for key in [k for k in self.detectors if k[2:] == (topic, partition)]:
                del self.detectors[key]

    def checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        """What to commit for the partition (None before its first event)."""
        windows = self.partitions.get((topic, partition))
        return None if windows is None else windows.checkpoint()

    def _new_sketch(self, key: WindowKey) -> WindowSketch:
        profile = self.profiles.get(key.model, key.version)
        if profile is None:  # filtered before ingest; a bug if reached
            raise AssertionError(f"no profile for {key}")
        return WindowSketch(profile)

    # -- events -----------------------------------------------------------------------

    def process(self, topic: str, partition: int, batch: InferenceBatch, offsets: IntArray) -> None:
        """Count a decoded batch of one partition.

        :param offsets: offset of every message of the batch, bad ones included
            (``batch.index`` maps rows to them); all of them count as consumed.
        """
        windows = self.partitions.get((topic, partition))
        if windows is None:
            windows = self.partitions[(topic, partition)] = self._windows()
        if len(batch):
            pairs, codes = _pair_codes(batch)
            known = self._known_rows(pairs, codes)
            rows_in, counted = known, None
            if self.partitioned and known.size < len(batch):
                # every event moves the partition's clock, scored or not: a partition
                # carrying only unprofiled models must still report its progress
                rows_in = np.arange(len(batch), dtype=np.int64)
                counted = np.zeros(len(batch), dtype=bool)
                counted[known] = True
            if rows_in.size:
                row_offsets = offsets[batch.index[rows_in]]
                ingested = windows.ingest_codes(
                    pairs, codes[rows_in], batch.event_time[rows_in], row_offsets, counted
                )
                for (model, version), count in ingested.late.items():
                    m.LATE_EVENTS.labels(model, version).inc(count)
                performance = self.performance.setdefault((topic, partition), {})
                for window, members in ingested.groups:
                    rows = rows_in[members]
                    confidence = self._update(
                        (topic, partition), window.key, window.state, batch, rows
                    )
                    tally = performance.get(window.key)
                    if tally is None:
                        tally = performance[window.key] = WindowPerformance()
                    tally.add_predictions(batch.variant[rows], confidence)
                    if self.join is not None:
                        self._hold(self.join, (topic, partition), window.key, batch, rows)
        if offsets.size:
            windows.next_offset = max(windows.next_offset, int(offsets.max()) + 1)
        if self.join is not None and len(batch):
            self._expire_join(self.join)

    # -- feedback ---------------------------------------------------------------------

    def feedback(self, labels: list[Label]) -> None:
        """Join decoded FeedbackEvents (any partition, any model) to held predictions.

        Joined labels count in their prediction's window while it is open (realised
        accuracy in its DriftScore), else as late labels; all feed ADWIN.
        """
        if self.join is None:
            return
        joined = [j for j in (self.join.add_feedback(label) for label in labels) if j]
        self._labelled(joined)
        self._expire_join(self.join)

    def _hold(
        self,
        join: FeedbackJoin,
        source: tuple[str, int],
        key: WindowKey,
        batch: InferenceBatch,
        rows: IntArray,
    ) -> None:
        """Hold a window group's predictions for the join; count labels already waiting."""
        ids = batch.request_id
        joined = join.add_predictions(
            model=key.model,
            version=key.version,
            window_start=key.start_ms,
            source=source,
            request_ids=[ids[i] for i in rows.tolist()],
            event_time=batch.event_time[rows],
            variant=batch.variant[rows],
            predicted=_predicted(batch, rows),
        )
        self._labelled(joined)

    def _labelled(self, joined: list[Joined]) -> None:
        """Count joined predictions: window tallies, metrics, the ADWIN error stream."""
        if not joined:
            return
        errors: dict[tuple[str, str, TopicPartitionKey], list[tuple[bool, int]]] = {}
        outcomes: dict[tuple[str, str, str, str], int] = {}
        late: dict[tuple[str, str], int] = {}
        for pair in joined:
            prediction, correct = pair.prediction, pair.correct
            model, version, variant = prediction.model, prediction.version, prediction.variant
            outcome = (model, version, variant, "true" if correct else "false")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            tallies = self.performance.get(prediction.source)
            key = WindowKey(prediction.window_start, model, version)
            windows = self.partitions.get(prediction.source)
            if tallies is not None and windows is not None and key in windows.open:
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = WindowPerformance()
                tally.add_label(variant, correct)
            else:
                late[(model, version)] = late.get((model, version), 0) + 1
            errors.setdefault((model, version, prediction.source), []).append(
                (not correct, prediction.event_time)
            )
        for outcome, n in outcomes.items():
            m.LABELLED_PREDICTIONS.labels(*outcome).inc(n)
        for model_version, n in late.items():
            m.LATE_LABELS.labels(*model_version).inc(n)
        for (model, version, source), items in errors.items():
            profile = self.profiles.get(model, version)
            detectors = (
                None
                if profile is None
                else self._detectors(source, WindowKey(0, model, version), profile)
            )
            if detectors is not None:
                wrong, times = zip(*items, strict=True)
                detectors.update_errors(np.array(wrong), np.array(times, dtype=np.int64))

    def _expire_join(self, join: FeedbackJoin) -> None:
        """Let the join drop what its window passed; publish its counts.

        A model's watermark is its slowest partition's: in partitioned mode a model is on
        every partition, and its windows there stay open until that partition passes them.
        """
        watermarks: dict[str, int] = {}
        for windows in self.partitions.values():
            for model, mark in windows.watermarks().items():
                watermarks[model] = min(mark, watermarks.get(model, mark))
        join.expire(watermarks)
        counts = join.take_counts()
        for model, n in counts.joined.items():
            m.FEEDBACK_JOINED.labels(model).inc(n)
        for model, n in counts.duplicate.items():
            m.FEEDBACK_UNMATCHED.labels(model, "duplicate").inc(n)
        for (model, why), n in counts.feedback_dropped.items():
            m.FEEDBACK_UNMATCHED.labels(model, why).inc(n)
        for (model, why), n in counts.predictions_dropped.items():
            m.PREDICTIONS_UNLABELLED.labels(model, why).inc(n)
        m.JOIN_HELD.labels("predictions").set(join.held_predictions)
        m.JOIN_HELD.labels("feedback").set(join.held_feedback)

    def _known_rows(self, pairs: list[tuple[str, str]], codes: IntArray) -> IntArray:
        """Rows whose (model, version) has a profile; the others are counted as skipped."""
        known = np.array([self.profiles.get(*pair) is not None for pair in pairs], dtype=bool)
        if known.all():
            return np.arange(len(codes), dtype=np.int64)
        counts = np.bincount(codes, minlength=len(pairs))
        for code in np.flatnonzero(~known).tolist():
            m.SKIPPED_EVENTS.labels(pairs[code][0], "unknown_model").inc(int(counts[code]))
        return np.flatnonzero(known[codes]).astype(np.int64)

    def _update(
        self,
        source: TopicPartitionKey,
        key: WindowKey,
        sketch: WindowSketch,
        batch: InferenceBatch,
        rows: IntArray,
    ) -> npt.NDArray[np.float64] | None:
        """Count ``rows`` into the sketch and the detectors; return each row's confidence
        (probability of the predicted class, NaN: none), None when no row has one."""
        profile = sketch.profile
        numeric = batch.feature_matrix(profile.numeric_names, rows)
        incomplete = int(np.isnan(numeric).any(axis=1).sum()) if numeric.size else 0
        if incomplete:
            m.MISSING_FEATURES.labels(key.model, key.version).inc(incomplete)
        categorical = None
        if profile.categorical:
            names = profile.categorical_names
            categorical = batch.categorical_matrix(names)[rows]
        labels = batch.probability_labels()
        matrix = batch.probability_matrix(labels)[rows] if labels else None
        probability = (
            _probability(matrix, labels, profile, len(rows))
            if profile.probability is not None
            else None
        )
        sketch.update(
            numeric,
            categorical=categorical,
            predicted=_predicted(batch, rows) if profile.prediction is not None else None,
            probability=probability,
        )
        m.EVENTS.labels(key.model, key.version).inc(len(rows))
        detectors = self._detectors(source, key, profile)
        if detectors is not None:
            detectors.update(numeric, batch.event_time[rows], probability)
        return None if matrix is None else confidence(matrix)

    def _detector_key(
        self, source: TopicPartitionKey, key: WindowKey
    ) -> tuple[str, str] | tuple[str, str, str, int]:
        if self.partitioned:
            return (key.model, key.version, *source)
        return (key.model, key.version)

    def _detectors(
        self, source: TopicPartitionKey, key: WindowKey, profile: ReferenceProfile
    ) -> OnlineDetectors | None:
        if self.detector_block_size <= 0:
            return None
        name = self._detector_key(source, key)
        detectors = self.detectors.get(name)
        if detectors is None:
            detectors = OnlineDetectors(profile, block_size=self.detector_block_size)
            self.detectors[name] = detectors
        return detectors

    # -- closing ----------------------------------------------------------------------

    def close_ready(self) -> list[DriftOutput]:
        """Score and return every window the watermarks closed, oldest first per partition."""
        return [self._output(share) for share in self.close_shares()]

    def close_shares(self) -> list[ClosedShare]:
        """Every window the watermarks closed, as counted by its partition, oldest first
        per partition (sliding windows after the tumbling ones of the same close)."""
        out: list[ClosedShare] = []
        now = self.clock()
        for (topic, partition), windows in self.partitions.items():
            for model, mark in windows.watermarks().items():
                m.WATERMARK_LAG.labels(model).set(now - mark / 1000.0)
            tallies = self.performance.get((topic, partition), {})
            for closed in windows.close_ready():
                key = closed.key
                out.append(
                    ClosedShare(
                        key=key,
                        end_ms=closed.end_ms,
                        kind=TUMBLING,
                        source=(topic, partition),
                        sketch=closed.state,
                        performance=tallies.get(key) or WindowPerformance(),
                        late_event_count=closed.late_event_count,
                        ranges=[(closed.first_offset, closed.last_offset)],
                        report=self._change_points((topic, partition), key, closed.end_ms),
                    )
                )
            for sliding in windows.sliding_ready():
                # the exact merge of the closed tumbling sketches (and tallies) it spans
                kept = self.kept_performance.get((topic, partition), {})
                performance = WindowPerformance()
                for key in sliding.keys:
                    part = tallies.get(key) or kept.get(key)
                    if part is not None:
                        performance.merge(part)
                profile = sliding.parts[0].profile
                out.append(
                    ClosedShare(
                        key=sliding.key,
                        end_ms=sliding.end_ms,
                        kind=SLIDING,
                        source=(topic, partition),
                        sketch=WindowSketch.merged(profile, sliding.parts),
                        performance=performance,
                        late_event_count=sliding.late_event_count,
                        ranges=list(sliding.ranges),
                    )
                )
            self._keep_performance(topic, partition, windows)
        return out

    def _output(self, share: ClosedShare) -> DriftOutput:
        """A window counted whole on one partition (inputs keyed by model) as a DriftScore."""
        report = share.report
        return drift_output(
            key=share.key,
            end_ms=share.end_ms,
            kind=share.kind,
            sketch=share.sketch,
            performance=share.performance,
            late_event_count=share.late_event_count,
            lineage=share.lineage(),
            change_points=[] if report is None else report.records(),
            rule=decision_rule(share.sketch.profile, self.rule),
            report=report,
        )

    def _keep_performance(
        self, topic: str, partition: int, windows: PartitionWindows[WindowSketch]
    ) -> None:
        """Move closed windows' performance tallies beside the kept sketches (sliding
        windows merge them) and drop those no sliding window needs any more."""
        tallies = self.performance.get((topic, partition), {})
        kept = self.kept_performance.setdefault((topic, partition), {})
        kept_keys = {w.key for ws in windows.kept.values() for w in ws}
        for key in [k for k in tallies if k not in windows.open]:
            tally = tallies.pop(key)
            if key in kept_keys:
                kept[key] = tally
        for key in [k for k in kept if k not in kept_keys]:
            del kept[key]

    def _change_points(
        self, source: TopicPartitionKey, key: WindowKey, end_ms: int
    ) -> ChangePointReport | None:
        """Take the online detectors' state at this close: metrics and a log line."""
        detectors = self.detectors.get(self._detector_key(source, key))
        if detectors is None:
            return None
        report = detectors.take(key.model, key.version, key.start_ms, end_ms)
        for state in report.flagged():
            labels = (key.model, state.detector, state.feature)
            m.CHANGE_POINTS.labels(*labels).inc(state.change_points)
            if state.last_change_ms is not None:
                m.LAST_CHANGE_POINT.labels(*labels).set(state.last_change_ms / 1000.0)
        if report.drift_detected:
            log.info(
                "change points %s/%s before window %d: %s",
                key.model,
                key.version,
                key.start_ms,
                ", ".join(
                    f"{s.feature} x{s.change_points} (last at {s.last_change_ms})"
                    for s in report.flagged()
                ),
            )
        return report


def _pair_codes(batch: InferenceBatch) -> tuple[list[tuple[str, str]], IntArray]:
    """The batch's distinct (model, version) pairs (first-seen order) and each row's code.

    A consume batch of one partition is usually one model (inputs are keyed by model):
    that case is two C-speed ``list.count`` scans, not a Python loop per row.
    """
    names, versions = batch.model_name, batch.model_version
    n = len(names)
    if n and names.count(names[0]) == n and versions.count(versions[0]) == n:
        return [(names[0], versions[0])], np.zeros(n, dtype=np.int64)
    index: dict[tuple[str, str], int] = {}
    codes = np.fromiter(
        (index.setdefault(p, len(index)) for p in zip(names, versions, strict=True)),
        dtype=np.int64,
        count=n,
    )
    return list(index), codes


def _predicted(batch: InferenceBatch, rows: IntArray) -> npt.NDArray[np.object_]:
    """Predicted class per row (None when the request failed), as the profile labels it."""
    kind = batch.prediction_kind[rows]
    out = np.full(len(rows), None, dtype=object)
    doubles = kind == PREDICTION_DOUBLE
    out[doubles] = batch.prediction[rows[doubles]]
    for j in np.flatnonzero(kind == PREDICTION_LABEL).tolist():
        out[j] = batch.prediction_label[int(rows[j])]
    return out


def _probability(
    matrix: npt.NDArray[np.float64] | None, labels: list[str], profile: ReferenceProfile, n: int
) -> npt.NDArray[np.float64]:
    """The positive class's probability (metadata ``positive_class``, default "1"), else
    the largest one; NaN when the event has none.

    :param matrix: the ``n`` rows' probabilities, one column per label of ``labels``
        (None: no row has any).
    """
    positive = profile.metadata.get("positive_class", "1")
    if matrix is None:
        return np.full(n, np.nan)
    present = ~np.isnan(matrix)  # decoded probabilities are finite: NaN means absent
    largest = np.where(present.any(axis=1), np.where(present, matrix, -np.inf).max(axis=1), np.nan)
    if positive not in labels:
        return largest
    mine = matrix[:, labels.index(positive)]
    out: npt.NDArray[np.float64] = np.where(np.isnan(mine), largest, mine)
    return out
