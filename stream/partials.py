"""What a drift processor in partitioned mode hands the merge step, per input partition.

When one model's events are spread over many input partitions (a producer keyed by
request id, or one model hotter than a core), no single instance sees a whole window.
Each instance then publishes, per input partition it owns:

- a :class:`WindowPartial` when that partition's watermark closes a window: the
  window's mergeable state counted on that partition alone (a
  :class:`~stream.stats.WindowSketch`, per-variant
  :class:`~stream.performance.WindowPerformance`, late events, the offsets it covers and
  the online detectors' states);
- a :class:`PartitionProgress` now and then: the partition's watermark (or that it is
  idle), so the merge step knows when every partition has passed a window's end.

The merge step (:mod:`stream.merge`) adds the partials of a window in partition order
and scores the sum once the smallest watermark of all partitions passed its end. The
sketches' counts are integers and the performance sums are fixed-point integers, so the
sum (and the DriftScore) is the same whatever the number of instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.detectors import DetectorState
from stream.drift_output import SLIDING, TUMBLING
from stream.performance import WindowPerformance
from stream.stats import WindowSketch

__all__ = ["SLIDING", "TUMBLING", "PartitionProgress", "Source", "WindowPartial"]


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """An input partition."""

    topic: str
    partition: int


@dataclass(slots=True)
class WindowPartial:
    """One input partition's share of one window of one (model, version).

    :param kind: ``tumbling`` or ``sliding`` (a sliding partial is the merge of the
        partition's closed tumbling sketches its span holds).
    :param ranges: offset ranges (first, last) of the partition the share covers, oldest
        first: one for a tumbling window, one per merged tumbling part for a sliding one.
    :param change_points: the partition's online detectors at this close (tumbling
        windows only; the detectors watch each partition's sub-stream).
    """

    model: str
    version: str
    kind: str
    start_ms: int
    end_ms: int
    source: Source
    sketch: WindowSketch
    performance: WindowPerformance
    late_event_count: int
    ranges: list[tuple[int, int]]
    change_points: list[DetectorState] = field(default_factory=list)

    @property
    def window(self) -> tuple[str, str, str, int]:
        """(model, version, kind, start): the window this is a share of."""
        return (self.model, self.version, self.kind, self.start_ms)

    @property
    def event_count(self) -> int:
        """Events of this partition counted in the window."""
        return self.sketch.event_count


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far an input partition has got.

    :param partition_count: partitions of the input topic when this was sent (the merge
        step waits for all of them).
    :param watermark_ms: the partition's watermark (newest event time minus the allowed
        lateness), None before its first event.
    :param idle: the partition holds no record at all (there is no idle timeout: see
        docs/decisions.md): the merge step leaves it out of the smallest watermark
        until it reports again.
    """

    source: Source
    partition_count: int
    watermark_ms: int | None
    idle: bool = False
