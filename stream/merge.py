"""The merge step: window partials of many input partitions in, one DriftScore per window out.

In partitioned mode every drift instance sends, per input partition it owns, a
:class:`~stream.partials.WindowPartial` when the partition's watermark closes a window
and a :class:`~stream.partials.PartitionProgress` now and then. Both go to
``drift.partials``: partials keyed by model, progress reports to *every* partition of
it. Each partition of ``drift.partials`` is therefore a complete, independent merge
domain (:class:`MergeDomain`): it sees every input partition's progress and all
partials of the models hashed to it.

Rules of a domain:

- the **merged watermark** is the smallest watermark of the input topic's partitions
  (all ``partition_count`` of them must have reported; partitions that reported idle,
  i.e. empty, are left out);
- a window is merged and scored once the merged watermark reaches its end: every
  partition sends its share of a window before any progress past its end, on the same
  ``drift.partials`` partition, in order (idempotent producer), so all shares are in;
- shares are added in input-partition order; counts are integers, so the DriftScore
  equals the one a single instance counting every event would make on the same
  partitions, whatever the number of instances;
- a share arriving for a window already merged is a **duplicate** when its partition's
  watermark had passed the window (a drift instance restarted and replayed: dropped,
  counted) and **late** otherwise (its partition was idle or unknown then): its events
  are reported as late in the next tumbling DriftScore of the model and version.

A restart replays ``drift.partials`` from the committed offset: the first record of the
oldest window still waiting (see :class:`MergeCheckpoint`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from stream.detectors import DetectorState
from stream.drift_output import SLIDING, TUMBLING, DriftOutput, OffsetRange, drift_output
from stream.drift_output import decision_rule as _rule
from stream.exceptions import CheckpointError
from stream.partials import PartitionProgress, Source, WindowPartial
from stream.performance import WindowPerformance
from stream.runtime.windows import WindowKey
from stream.stats import DecisionRule, WindowSketch

FORMAT = 2
WindowId = tuple[str, str, str, int]  # model, version, kind, start
#: What :meth:`MergeDomain.add` did with a record.
Outcome = Literal["progress", "merged", "duplicate", "late", "replayed"]


@dataclass(slots=True)
class SourceState:
    """What an input partition last reported."""

    watermark_ms: int | None = None
    idle: bool = False


@dataclass(slots=True)
class PendingWindow:
    """A window some partitions sent shares of, waiting for the merged watermark."""

    end_ms: int
    shares: dict[Source, WindowPartial] = field(default_factory=dict)
    #: Offset (in its drift.partials partition) of the first share received.
    first_offset: int = -1


@dataclass(frozen=True, slots=True)
class MergeCheckpoint:
    """A domain's state at a commit, besides the waiting windows (rebuilt by replay).

    :param commit_offset: where a restart replays from (first record of the oldest
        waiting window, else ``next_offset``).
    :param next_offset: records before this were processed already: on replay they only
        rebuild waiting windows.
    :param merged_through: windows ending at or before this were merged and emitted.
    :param sources: ``"topic:partition"`` -> [watermark or None, idle].
    :param partition_counts: input topic -> its partition count.
    :param late: ``"model\\x1fversion"`` -> late events not yet reported.
    :param late_shares: late shares already counted whose partition has not yet passed
        their window: ``[model, version, kind, start, end, topic, partition]`` (a replay
        of one is a duplicate, not late again).
    """

    commit_offset: int
    next_offset: int
    merged_through: int | None
    sources: dict[str, list[Any]]
    partition_counts: dict[str, int]
    late: dict[str, int]
    late_shares: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """Compact JSON (offset-commit metadata, and the local store)."""
        body = {"f": FORMAT, "x": self.commit_offset, "c": self.next_offset,
                "m": self.merged_through, "s": _pack(self.sources), "p": self.partition_counts,
                "l": self.late, "ls": self.late_shares}  # fmt: skip
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MergeCheckpoint:
        """Parse :meth:`to_json`.

        :raises CheckpointError: not a merge checkpoint of this format.
        """
        try:
            body = json.loads(text)
            if body.get("f") != FORMAT or "m" not in body:
                raise CheckpointError(f"not a merge checkpoint of format {FORMAT}")
            return cls(
                commit_offset=int(body["x"]),
                next_offset=int(body["c"]),
                merged_through=None if body["m"] is None else int(body["m"]),
                sources=_unpack(body["s"]),
                partition_counts={str(k): int(v) for k, v in body["p"].items()},
                late={str(k): int(v) for k, v in body["l"].items()},
                late_shares=[
                    [str(m), str(v), str(k), int(s), int(e), str(t), int(p)]
                    for m, v, k, s, e, t, p in body.get("ls", [])
                ],
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise CheckpointError(f"unreadable merge checkpoint: {exc}") from exc


def _pack(sources: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Sources per topic as ``[base, [[watermark - base, idle], ...]]`` by partition
    (null where a partition has not reported): about 10 bytes a partition, so a topic
    of a few hundred partitions still fits Kafka's 4 KB commit metadata."""
    by_topic: dict[str, dict[int, list[Any]]] = {}
    for name, state in sources.items():
        topic, number = name.rsplit(":", 1)
        by_topic.setdefault(topic, {})[int(number)] = state
    packed: dict[str, list[Any]] = {}
    for topic, states in by_topic.items():
        marks = [mark for mark, _ in states.values() if mark is not None]
        base = min(marks) if marks else 0
        rows: list[Any] = [None] * (max(states) + 1)
        for partition, (mark, idle) in states.items():
            rows[partition] = [None if mark is None else mark - base, int(idle)]
        packed[topic] = [base, rows]
    return packed


def _unpack(packed: dict[str, list[Any]]) -> dict[str, list[Any]]:
    sources: dict[str, list[Any]] = {}
    for topic, (base, rows) in packed.items():
        for partition, row in enumerate(rows):
            if row is not None:
                mark = None if row[0] is None else int(base) + int(row[0])
                sources[f"{topic}:{partition}"] = [mark, bool(row[1])]
    return sources


@dataclass(slots=True)
class MergeCounts:
    """What a domain dropped or re-attributed, in total (the metrics count the outcomes
    :meth:`MergeDomain.add` returns; these totals are for tests and debugging)."""

    duplicates: int = 0
    late_shares: int = 0
    late_events: int = 0


class MergeDomain:
    """The merge state of one ``drift.partials`` partition.

    :param rule: decision rule for profiles without a calibration.
    :param checkpoint: restore after a restart (replay from its commit offset).
    """

    def __init__(self, rule: DecisionRule, checkpoint: MergeCheckpoint | None = None) -> None:
        self.rule = rule
        self.sources: dict[Source, SourceState] = {}
        self.partition_counts: dict[str, int] = {}
        self.pending: dict[WindowId, PendingWindow] = {}
        self.merged_through: int | None = None
        self.late: dict[tuple[str, str], int] = {}
        #: Late shares counted, by (window, source) -> window end, until their partition
        #: passes the window (from then on a replay of one is a plain duplicate).
        self.late_shares: dict[tuple[WindowId, Source], int] = {}
        self.next_offset = -1
        self.replay_until = -1
        self.counts = MergeCounts()
        if checkpoint is not None:
            self._restore(checkpoint)

    def _restore(self, checkpoint: MergeCheckpoint) -> None:
        self.merged_through = checkpoint.merged_through
        self.partition_counts = dict(checkpoint.partition_counts)
        for name, (mark, idle) in checkpoint.sources.items():
            topic, partition = name.rsplit(":", 1)
            self.sources[Source(topic, int(partition))] = SourceState(mark, idle)
        for name, n in checkpoint.late.items():
            model, version = name.split("\x1f", 1)
            self.late[(model, version)] = n
        for model, version, kind, start, end, topic, partition in checkpoint.late_shares:
            wid = (model, version, kind, start)
            self.late_shares[(wid, Source(topic, partition))] = end
        self.next_offset = self.replay_until = checkpoint.next_offset

    # -- input ------------------------------------------------------------------------

    def add(self, item: WindowPartial | PartitionProgress, offset: int) -> Outcome:
        """Take one decoded ``drift.partials`` record at ``offset``; say what became of it."""
        replayed = offset < self.replay_until
        self.skip(offset)
        if isinstance(item, PartitionProgress):
            if replayed:  # the checkpoint holds the sources' state at next_offset
                return "replayed"
            self._progress(item)
            return "progress"
        if self.merged_through is not None and item.end_ms <= self.merged_through:
            return "replayed" if replayed else self._after_merge(item)
        window = self.pending.get(item.window)
        if window is None:
            window = self.pending[item.window] = PendingWindow(item.end_ms, first_offset=offset)
        window.shares[item.source] = item  # a replayed duplicate replaces its twin
        return "merged"

    def skip(self, offset: int) -> None:
        """Count ``offset`` as consumed (a record sent to the dead-letter topic)."""
        self.next_offset = max(self.next_offset, offset + 1)

    def _progress(self, progress: PartitionProgress) -> None:
        topic = progress.source.topic
        self.partition_counts[topic] = max(
            progress.partition_count, self.partition_counts.get(topic, 0)
        )
        state = self.sources.setdefault(progress.source, SourceState())
        state.idle = progress.idle
        if progress.watermark_ms is not None:
            old = state.watermark_ms
            state.watermark_ms = mark = (
                progress.watermark_ms if old is None else max(old, progress.watermark_ms)
            )
            passed = [
                k for k, end in self.late_shares.items() if k[1] == progress.source and end <= mark
            ]
            for key in passed:
                del self.late_shares[key]

    def _after_merge(self, share: WindowPartial) -> Outcome:
        """A share of a window already emitted: a replayed duplicate, or late."""
        state = self.sources.get(share.source)
        if (
            state is not None
            and state.watermark_ms is not None
            and (state.watermark_ms >= share.end_ms)
        ):
            self.counts.duplicates += 1
            return "duplicate"
        if (share.window, share.source) in self.late_shares:  # replayed before its progress
            self.counts.duplicates += 1
            return "duplicate"
        self.late_shares[(share.window, share.source)] = share.end_ms
        self.counts.late_shares += 1
        if share.kind == TUMBLING:  # a sliding share repeats tumbling ones' events
            pair = (share.model, share.version)
            self.late[pair] = self.late.get(pair, 0) + share.event_count
            self.counts.late_events += share.event_count
        return "late"

    # -- merging ----------------------------------------------------------------------

    def merged_watermark(self) -> int | None:
        """Smallest watermark of every input partition not idle; None while one has not
        reported a watermark (or none is active)."""
        marks: list[int] = []
        for topic, count in self.partition_counts.items():
            for partition in range(count):
                state = self.sources.get(Source(topic, partition))
                if state is None or (state.watermark_ms is None and not state.idle):
                    return None
                if not state.idle and state.watermark_ms is not None:
                    marks.append(state.watermark_ms)
        return min(marks) if marks else None

    def waiting_for(self) -> list[Source]:
        """Input partitions holding the merged watermark back (no report yet, a report
        without a watermark and not idle, or the smallest watermark): what an operator
        looks at when merged windows stall."""
        expected = [
            Source(t, p) for t, count in sorted(self.partition_counts.items()) for p in range(count)
        ]
        unknown = [
            s
            for s in expected
            if (state := self.sources.get(s)) is None
            or (state.watermark_ms is None and not state.idle)
        ]
        if unknown:
            return unknown
        mark = self.merged_watermark()
        if mark is None:  # every partition is empty
            return []
        states = self.sources
        return [s for s in expected if not states[s].idle and states[s].watermark_ms == mark]

    def close_ready(self) -> list[DriftOutput]:
        """Merge and score every waiting window the merged watermark passed, by end
        (tumbling before sliding at the same end)."""
        mark = self.merged_watermark()
        if mark is None:
            return []
        due = sorted(
            (wid for wid, w in self.pending.items() if w.end_ms <= mark),
            key=lambda wid: (self.pending[wid].end_ms, wid[2] == SLIDING, wid),
        )
        out = [self._merge(wid, self.pending.pop(wid)) for wid in due]
        if self.merged_through is None or mark > self.merged_through:
            self.merged_through = mark
        return out

    def _merge(self, wid: WindowId, window: PendingWindow) -> DriftOutput:
        model, version, kind, start = wid
        shares = [window.shares[s] for s in sorted(window.shares)]
        profile = shares[0].sketch.profile
        sketch = WindowSketch.merged(profile, [s.sketch for s in shares])
        performance = WindowPerformance()
        for share in shares:
            performance.merge(share.performance)
        late = sum(s.late_event_count for s in shares)
        if kind == TUMBLING:
            late += self.late.pop((model, version), 0)
        lineage = [
            OffsetRange(s.source.topic, s.source.partition, first, last)
            for s in shares
            for first, last in s.ranges
        ]
        return drift_output(
            key=WindowKey(start, model, version),
            end_ms=window.end_ms,
            kind=kind,
            sketch=sketch,
            performance=performance,
            late_event_count=late,
            lineage=lineage,
            change_points=[s.record() for s in merge_detector_states(shares)],
            rule=_rule(profile, self.rule),
        )

    # -- commits ----------------------------------------------------------------------

    def checkpoint(self) -> MergeCheckpoint | None:
        """What to commit (None before the first record)."""
        if self.next_offset < 0:
            return None
        firsts = [w.first_offset for w in self.pending.values()]
        return MergeCheckpoint(
            commit_offset=min([*firsts, self.next_offset]),
            next_offset=self.next_offset,
            merged_through=self.merged_through,
            sources={
                f"{s.topic}:{s.partition}": [st.watermark_ms, st.idle]
                for s, st in sorted(self.sources.items())
            },
            partition_counts=dict(self.partition_counts),
            late={f"{m}\x1f{v}": n for (m, v), n in self.late.items() if n},
            late_shares=[
                [*wid, end, source.topic, source.partition]
                for (wid, source), end in sorted(self.late_shares.items())
            ],
        )


def merge_detector_states(shares: list[WindowPartial]) -> list[DetectorState]:
    """One state per (detector, feature) over the partitions' detectors: change points
    summed, the newest change point, flagged if any partition flagged, and the mean of
    the statistics the partitions have (e.g. ADWIN's error estimate)."""
    grouped: dict[tuple[str, str], list[DetectorState]] = {}
    for share in shares:
        for state in share.change_points:
            grouped.setdefault((state.detector, state.feature), []).append(state)
    out: list[DetectorState] = []
    for (detector, feature), states in grouped.items():
        lasts = [s.last_change_ms for s in states if s.last_change_ms is not None]
        stats = [s.statistic for s in states if s.statistic is not None]
        out.append(
            DetectorState(
                detector=detector,
                feature=feature,
                drift_detected=any(s.drift_detected for s in states),
                change_points=sum(s.change_points for s in states),
                last_change_ms=max(lasts) if lasts else None,
                statistic=sum(stats) / len(stats) if stats else None,
            )
        )
    return out
