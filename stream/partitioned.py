"""The drift processor in partitioned mode: window partials and progress reports out.

With inputs keyed by model, one instance sees every event of a model and scores its
windows itself. When a model's events are spread over many partitions (producers keyed
by request id, or a model hotter than one core), each instance instead sends what it
counted per partition to ``drift.partials`` (:mod:`stream.partials`), and the merge step
(:mod:`stream.merge`, ``driftline drift merge``) adds the shares and scores them.

:class:`PartitionedDriftProcessor` wraps a :class:`~stream.drift_processor.DriftProcessor`
built with ``partitioned=True`` (one watermark per partition, detectors per partition)
and turns its closed windows into :class:`PartialOutput`\\ s; after them, per partition,
a :class:`ProgressOutput` when the partition's watermark moved (at most once per
``progress_interval_s`` unless a window closed on it) and at least every
``heartbeat_s``, so a restarted merge step learns every partition's watermark again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import InferenceBatch
from stream.drift_output import NATURAL_KEY_HEADER
from stream.drift_processor import ClosedShare, DriftProcessor
from stream.feedback_join import Label
from stream.partials import PartitionProgress, Source, WindowPartial
from stream.partials_codec import partial_to_record, progress_to_record
from stream.runtime.checkpoint import Checkpoint

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class PartialOutput:
    """A window partial to produce, keyed by model."""

    partial: WindowPartial
    broadcast = False

    @property
    def key(self) -> str:
        """The model: all partials of a model meet in one merge domain."""
        return self.partial.model

    @property
    def value(self) -> dict[str, object]:
        """The DriftPartial record."""
        return partial_to_record(self.partial)

    @property
    def headers(self) -> Headers:
        """The natural key of the share: window and source partition."""
        p = self.partial
        source = f"{p.source.topic}:{p.source.partition}"
        natural = f"{p.model}/{p.version}/{p.kind}/{p.start_ms}@{source}"
        return [(NATURAL_KEY_HEADER, natural.encode())]


@dataclass(frozen=True, slots=True)
class ProgressOutput:
    """A progress report, produced to every partition of ``drift.partials``."""

    progress: PartitionProgress
    broadcast = True
    key = ""

    @property
    def value(self) -> dict[str, object]:
        """The DriftPartial record (progress kind)."""
        return progress_to_record(self.progress)

    @property
    def headers(self) -> Headers:
        """None: progress reports have no natural key."""
        return []


@dataclass(slots=True)
class _Reported:
    watermark_ms: int | None
    idle: bool
    at: float


class PartitionedDriftProcessor:
    """A partitioned :class:`DriftProcessor`'s windows as partials, plus progress reports.

    :param inner: built with ``partitioned=True``.
    :param partition_count: the input topic's partition count now (the merge step waits
        for that many partitions).
    :param is_empty: whether an input partition holds no record at all: a partition
        without events reports itself idle only then, so a partition that is merely not
        read yet never lets the merge step close windows without it.
    """

    def __init__(
        self,
        inner: DriftProcessor,
        *,
        partition_count: Callable[[str], int],
        is_empty: Callable[[str, int], bool],
        progress_interval_s: float = 1.0,
        heartbeat_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not inner.partitioned:
            raise ValueError("the inner DriftProcessor must be built with partitioned=True")
        self.inner = inner
        self.partition_count = partition_count
        self.is_empty = is_empty
        self.progress_interval_s = progress_interval_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.reported: dict[tuple[str, int], _Reported] = {}

    # -- the WindowedProcessor protocol, delegated ------------------------------------

    @property
    def partitions(self) -> Mapping[tuple[str, int], object]:
        """The inner processor's partitions."""
        return self.inner.partitions

    def assign(self, topic: str, partition: int, checkpoint: Checkpoint | None) -> None:
        """Start (or restart) a partition."""
        self.inner.assign(topic, partition, checkpoint)

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition; whoever gets it reports its progress."""
        self.inner.revoke(topic, partition)
        self.reported.pop((topic, partition), None)

    def checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        """What to commit for the partition."""
        return self.inner.checkpoint(topic, partition)

    def process(
        self, topic: str, partition: int, batch: InferenceBatch, offsets: npt.NDArray[np.int64]
    ) -> None:
        """Count a decoded batch of one partition."""
        self.inner.process(topic, partition, batch, offsets)

    def feedback(self, labels: list[Label]) -> None:
        """Join labels to the predictions this instance holds."""
        self.inner.feedback(labels)

    # -- output -----------------------------------------------------------------------

    def close_ready(self) -> list[PartialOutput | ProgressOutput]:
        """Partials of the windows closed, then the progress reports due."""
        shares = self.inner.close_shares()
        out: list[PartialOutput | ProgressOutput] = [
            PartialOutput(to_partial(share)) for share in shares
        ]
        closed_on = {share.source for share in shares}
        out.extend(self._progress(closed_on))
        return out

    def _progress(self, closed_on: set[tuple[str, int]]) -> list[ProgressOutput]:
        now = self.clock()
        out: list[ProgressOutput] = []
        for source, windows in self.inner.partitions.items():
            mark = windows.partition_watermark()
            last = self.reported.get(source)
            moved = last is None or last.watermark_ms != mark
            due = (
                source in closed_on
                or (moved and (last is None or now - last.at >= self.progress_interval_s))
                or (last is not None and now - last.at >= self.heartbeat_s)
            )
            if not due:
                continue
            topic, partition = source
            idle = mark is None and windows.next_offset < 0 and self.is_empty(topic, partition)
            self.reported[source] = _Reported(mark, idle, now)
            out.append(
                ProgressOutput(
                    PartitionProgress(
                        Source(topic, partition), self.partition_count(topic), mark, idle
                    )
                )
            )
        return out


def to_partial(share: ClosedShare) -> WindowPartial:
    """A closed share as the partial the merge step takes."""
    topic, partition = share.source
    return WindowPartial(
        model=share.key.model,
        version=share.key.version,
        kind=share.kind,
        start_ms=share.key.start_ms,
        end_ms=share.end_ms,
        source=Source(topic, partition),
        sketch=share.sketch,
        performance=share.performance,
        late_event_count=share.late_event_count,
        ranges=list(share.ranges),
        change_points=[] if share.report is None else list(share.report.states),
    )
