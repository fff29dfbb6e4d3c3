"""Event-time windows of one input partition, with a watermark and late events.

Rules (per model; every event of a model is on one partition, in order):

- an event at time ``t`` belongs to the tumbling window ``[s, s + size)`` with
  ``s = floor(t/size)*size``, keyed by ``(model, version, s)``; ``size`` is the model's
  (:class:`~stream.runtime.window_plan.WindowPlan`);
- the model's watermark is its newest event time seen so far minus the allowed
  lateness; a window closes once the watermark reaches its end;
- an event is **late** when its window had closed before it arrived (judged against the
  events before it, not against the end of its batch); it is counted and reported in the
  next DriftScore of its (model, version): the first window, at or after the one that
  was open when it arrived, that closes;
- a **sliding** window ``[e - sliding, e)`` is the merge of the closed tumbling windows of
  its (model, version) that start in it; it is produced when the model's watermark
  reaches ``e``, for every ``e`` on the model's slide whose span holds at least one
  closed tumbling window (so also where the tumbling window ending at ``e`` was empty,
  and never for a span without events). Closed windows
  are kept while a future sliding window can need them (at most ``sliding / size`` per
  model and version), and the commit offset stops at their first event, so a restart's
  replay rebuilds them (judging each replayed event as it was judged the first time,
  from the checkpoint's seeds) without emitting them again.

With ``watermark="partition"`` (the drift processor's partitioned mode, where one
model's events are spread over many partitions) the watermark is the partition's: the
newest event time of *any* model on the partition, minus the lateness. Every other
rule is the same with "the model's watermark" read as "the partition's".

Every rule is decided event by event in partition order (vectorised per batch with a
running maximum), so the result does not depend on how the stream was cut into batches
or spread over instances. ``tests/unit/test_drift_windows.py`` checks that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from stream.runtime.checkpoint import Checkpoint
from stream.runtime.window_plan import WindowPlan

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
S = TypeVar("S")
_SEP = "\x1f"
_NO_TIME = np.iinfo(np.int64).min // 2
#: The one watermark key of a partition whose watermark is shared by every model.
PARTITION_CLOCK = "\x1fpartition"
WatermarkScope = Literal["model", "partition"]


@dataclass(frozen=True, slots=True, order=True)
class WindowKey:
    """The natural key of a window and of its output record.

    ``version`` is the second part of the key: the model version for the drift
    processor, the variant (baseline, canary, shadow) for the SLO processor.
    """

    start_ms: int
    model: str
    version: str


@dataclass(slots=True)
class OpenWindow(Generic[S]):
    """A window still accepting events: its state and the offsets it covers."""

    key: WindowKey
    state: S
    first_offset: int
    last_offset: int
    events: int = 0
    #: The model's newest event time before this window's first event (replay seed).
    seed: int = _NO_TIME
    #: Closed before the checkpoint it was replayed from: rebuilt for the sliding
    #: windows that still need it, never emitted again.
    restored: bool = False


@dataclass(frozen=True, slots=True)
class SlidingWindow(Generic[S]):
    """A sliding window: the closed tumbling windows' states it merges, oldest first.

    ``late_event_count`` is that of the tumbling window of the same (model, version)
    ending at ``end_ms`` (0 when there is none): late events are reported in tumbling
    records, and repeated here, not once per overlapping sliding window.
    """

    key: WindowKey
    end_ms: int
    parts: list[S]
    first_offset: int
    last_offset: int
    events: int
    late_event_count: int
    #: The merged tumbling windows' keys and (first, last) offsets, oldest first.
    keys: list[WindowKey] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClosedWindow(Generic[S]):
    """A window the watermark passed: ready to score and emit."""

    key: WindowKey
    end_ms: int
    state: S
    first_offset: int
    last_offset: int
    events: int
    late_event_count: int


@dataclass(slots=True)
class Ingested(Generic[S]):
    """What one batch did: rows to add to each window's state, late and replayed counts."""

    groups: list[tuple[OpenWindow[S], IntArray]] = field(default_factory=list)
    late: dict[tuple[str, str], int] = field(default_factory=dict)
    replayed_skips: int = 0


class PartitionWindows(Generic[S]):
    """Open and kept windows, watermarks and unreported late events of one partition.

    :param plan: window sizes per model (an int: tumbling windows of that size for
        every model, no sliding windows).
    :param lateness_ms: allowed lateness.
    :param new_state: makes the empty state of a new window (a WindowSketch).
    :param checkpoint: restore after a restart: offsets before ``next_offset`` were
        processed already; events among them are judged as they were then (from the
        checkpoint's seeds), and those of closed windows are skipped unless a sliding
        window still needs their window, which is then rebuilt (not emitted).
    :param watermark: ``model`` (each model its own watermark) or ``partition`` (one
        watermark for every model of the partition).
    """

    def __init__(
        self,
        plan: WindowPlan | int,
        lateness_ms: int,
        new_state: Callable[[WindowKey], S],
        checkpoint: Checkpoint | None = None,
        watermark: WatermarkScope = "model",
    ) -> None:
        if lateness_ms < 0:
            raise ValueError(f"lateness_ms must be >= 0, got {lateness_ms}")
        self.plan = plan if isinstance(plan, WindowPlan) else WindowPlan.tumbling_only(plan)
        self.lateness_ms = lateness_ms
        self.new_state = new_state
        self.shared_clock = watermark == "partition"
        #: Models seen (their watermark is the partition's when the clock is shared).
        self.models: set[str] = set()
        self.open: dict[WindowKey, OpenWindow[S]] = {}
        #: Closed windows sliding windows may still need, per (model, version), by start.
        self.kept: dict[tuple[str, str], list[OpenWindow[S]]] = {}
        self.max_time: dict[str, int] = {}
        self.pending_late: dict[tuple[str, str], list[list[int]]] = {}
        #: Newest event time per model at the checkpoint (judges what had closed).
        self.replay_marks: dict[str, int] = dict(checkpoint.watermarks) if checkpoint else {}
        self.replay_seeds: dict[str, int | None] = {}
        #: Per model: sliding windows starting before this are incomplete (not produced).
        self.sliding_from: dict[str, int] = {}
        #: Per model: sliding windows ending at or before this were produced (or are due
        #: to no one: a restart replays from a checkpoint whose watermark passed them).
        self.sliding_done: dict[str, int] = {}
        self._sliding_due: list[SlidingWindow[S]] = []
        if checkpoint:
            self._restore(checkpoint)
        self.replay_until = checkpoint.next_offset if checkpoint else -1
        self.next_offset = checkpoint.next_offset if checkpoint else -1
        self.position = checkpoint.commit_offset if checkpoint else -1

    def _restore(self, checkpoint: Checkpoint) -> None:
        for name, entries in checkpoint.late.items():
            model, version = name.split(_SEP, 1)
            self.pending_late[(model, version)] = [list(e) for e in entries]
        self.max_time = dict(checkpoint.watermarks)
        self.sliding_done = {m: t - self.lateness_ms for m, t in checkpoint.watermarks.items()}
        if checkpoint.seeds is None:  # older checkpoint: closed windows cannot be rebuilt
            for model, newest in checkpoint.watermarks.items():
                self.sliding_from[model] = self.plan.sizes(model).start(newest - self.lateness_ms)
            return
        self.replay_seeds = dict(checkpoint.seeds)
        for model, seed in checkpoint.seeds.items():
            if seed is None:
                self.max_time.pop(model, None)
            else:
                self.max_time[model] = seed

    @property
    def size_ms(self) -> int:
        """The default tumbling window length."""
        return self.plan.default.tumbling_ms

    def watermark(self, model: str) -> int | None:
        """The model's watermark (ms), None before its first event."""
        newest = self.max_time.get(self.clock(model))
        return None if newest is None else newest - self.lateness_ms

    def clock(self, model: str) -> str:
        """The key of the watermark ``model`` follows (its own name, or the partition's)."""
        return PARTITION_CLOCK if self.shared_clock else model

    def watermarks(self) -> dict[str, int]:
        """Watermark (ms) of every model seen so far that has one."""
        out: dict[str, int] = {}
        for model in self.models if self.shared_clock else self.max_time:
            mark = self.watermark(model)
            if mark is not None:
                out[model] = mark
        return out

    def partition_watermark(self) -> int | None:
        """The shared watermark (the smallest model's when each has its own); None
        before any event."""
        marks = [t - self.lateness_ms for t in self.max_time.values()]
        return min(marks) if marks else None

    def ingest(
        self,
        models: Sequence[str],
        versions: Sequence[str],
        times: IntArray,
        offsets: IntArray,
    ) -> Ingested[S]:
        """Assign a batch (in partition order) to windows; the caller updates the states.

        Returns, per open window, the row indices that belong to it. Late rows are
        counted (and remembered for the next DriftScore); replayed rows of closed
        windows are skipped.
        """
        n = len(times)
        pair_index: dict[tuple[str, str], int] = {}
        pair_codes = np.fromiter(
            (pair_index.setdefault(p, len(pair_index)) for p in zip(models, versions, strict=True)),
            dtype=np.int64,
            count=n,
        )
        return self.ingest_codes(list(pair_index), pair_codes, times, offsets)

    def ingest_codes(
        self,
        pairs: Sequence[tuple[str, str]],
        pair_codes: IntArray,
        times: IntArray,
        offsets: IntArray,
        counted: BoolArray | None = None,
    ) -> Ingested[S]:
        """:meth:`ingest` with (model, version) given as ``pairs[pair_codes[row]]``.

        What the processor calls: it factorises a batch's model columns once (no
        per-row Python). ``pairs`` may hold pairs no row uses.

        :param counted: rows to assign to windows (None: all); the others only move the
            watermark (events of unprofiled models under a shared partition clock).
        """
        out: Ingested[S] = Ingested()
        n = len(times)
        if n == 0:
            return out
        times = np.asarray(times, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        self.next_offset = max(self.next_offset, int(offsets.max()) + 1)
        self.position = max(self.position, int(offsets.max()) + 1)
        used, pair_codes = np.unique(np.asarray(pair_codes, dtype=np.int64), return_inverse=True)
        pair_codes = pair_codes.reshape(-1).astype(np.int64)
        present = [pairs[u] for u in used.tolist()]  # only pairs with rows, in code order
        pair_model = [p[0] for p in present]
        model_index: dict[str, int] = {}
        model_of_pair = np.array([model_index.setdefault(m, len(model_index)) for m in pair_model])
        model_codes = model_of_pair[pair_codes]
        names = list(model_index)
        if counted is None:
            self.models.update(names)
        else:
            self.models.update(pair_model[c] for c in np.unique(pair_codes[counted]).tolist())
        sizes = np.array([self.plan.sizes(m).tumbling_ms for m in names], dtype=np.int64)
        row_sizes = sizes[model_codes]
        starts = times - np.mod(times, row_sizes)
        before = self._running_max(model_codes, names, times)
        closed_at_arrival = starts + row_sizes <= before - self.lateness_ms
        replayed = offsets < self.replay_until
        skip = closed_at_arrival & replayed
        if self.replay_marks and replayed.any():
            skip |= replayed & ~closed_at_arrival & self._unneeded(model_codes, names, starts)
        late = closed_at_arrival & ~replayed
        if counted is not None:
            late &= counted
            skip |= ~counted
        out.replayed_skips = int((skip if counted is None else skip & counted).sum())
        if late.any():
            self._count_late(out, present, pair_codes[late], before[late] - self.lateness_ms)
        assigned = np.flatnonzero(~(closed_at_arrival | skip))
        if assigned.size:
            self._group(out, present, pair_codes, starts, offsets, assigned, row_sizes, before)
        return out

    def _unneeded(self, model_codes: IntArray, names: list[str], starts: IntArray) -> BoolArray:
        """Rows whose window had closed at the checkpoint and no sliding window needs."""
        out = np.zeros(len(starts), dtype=bool)
        for code, model in enumerate(names):
            mark = self.replay_marks.get(self.clock(model))
            if mark is None:
                continue
            sizes = self.plan.sizes(model)
            rows = model_codes == code
            closed = starts + sizes.tumbling_ms <= mark - self.lateness_ms
            unneeded = rows & closed
            if sizes.sliding_ms:
                unneeded &= starts < sizes.frontier(mark - self.lateness_ms)
            out |= unneeded
        return out

    def _closed_at_checkpoint(self, key: WindowKey) -> bool:
        mark = self.replay_marks.get(self.clock(key.model))
        size = self.plan.sizes(key.model).tumbling_ms
        return mark is not None and key.start_ms + size <= mark - self.lateness_ms

    def _running_max(self, model_codes: IntArray, names: list[str], times: IntArray) -> IntArray:
        """Newest event time of the row's model (or partition, when the clock is shared)
        *before* the row (exclusive running max)."""
        if self.shared_clock:
            seed = self.max_time.get(PARTITION_CLOCK, _NO_TIME)
            running = np.maximum.accumulate(np.concatenate(([seed], times)))
            self.max_time[PARTITION_CLOCK] = int(running[-1])
            shared: IntArray = running[:-1]
            return shared
        before = np.empty_like(times)
        for code, model in enumerate(names):
            rows = np.flatnonzero(model_codes == code)
            seed = self.max_time.get(model, _NO_TIME)
            running = np.maximum.accumulate(np.concatenate(([seed], times[rows])))
            before[rows] = running[:-1]
            self.max_time[model] = int(running[-1])
        return before

    def _count_late(
        self,
        out: Ingested[S],
        pairs: list[tuple[str, str]],
        codes: IntArray,
        watermarks: IntArray,
    ) -> None:
        for code, mark in zip(codes.tolist(), watermarks.tolist(), strict=True):
            pair = pairs[code]
            target = self.plan.sizes(pair[0]).start(mark)  # first window still open
            out.late[pair] = out.late.get(pair, 0) + 1
            entries = self.pending_late.setdefault(pair, [])
            if entries and entries[-1][0] == target:
                entries[-1][1] += 1
            else:
                entries.append([target, 1])

    def _group(
        self,
        out: Ingested[S],
        pairs: list[tuple[str, str]],
        pair_codes: IntArray,
        starts: IntArray,
        offsets: IntArray,
        rows: IntArray,
        row_sizes: IntArray,
        before: IntArray,
    ) -> None:
        base = int(starts[rows].min())
        slot = (starts[rows] - base) // row_sizes[rows]  # one size per pair: a unique slot
        combined = pair_codes[rows] * (int(slot.max()) + 1) + slot
        keys, inverse = np.unique(combined, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
        for g in range(len(keys)):
            members = rows[order[bounds[g] : bounds[g + 1]]]
            first = int(members[0])
            model, version = pairs[int(pair_codes[first])]
            key = WindowKey(int(starts[first]), model, version)
            window = self.open.get(key)
            member_offsets = offsets[members]
            if window is None:
                window = OpenWindow(
                    key, self.new_state(key), int(member_offsets.min()), int(member_offsets.max()),
                    seed=int(before[first]), restored=self._closed_at_checkpoint(key),
                )  # fmt: skip
                self.open[key] = window
            else:
                window.first_offset = min(window.first_offset, int(member_offsets.min()))
                window.last_offset = max(window.last_offset, int(member_offsets.max()))
            window.events += len(members)
            out.groups.append((window, members))

    def close_ready(self) -> list[ClosedWindow[S]]:
        """Remove and return the tumbling windows whose end the watermark reached,
        oldest first; the sliding windows that became due wait in :meth:`sliding_ready`.

        Each closed window is kept while a sliding window may need it; restored
        windows (rebuilt by a replay) are kept and not returned.
        """
        ready = [
            w
            for key, w in self.open.items()
            if key.start_ms + self.plan.sizes(key.model).tumbling_ms
            <= self.max_time[self.clock(key.model)] - self.lateness_ms
        ]
        ready.sort(key=lambda w: w.key)
        closed: list[ClosedWindow[S]] = []
        late_at: dict[tuple[str, str, int], int] = {}
        for w in ready:
            del self.open[w.key]
            sizes = self.plan.sizes(w.key.model)
            end = w.key.start_ms + sizes.tumbling_ms
            if sizes.sliding_ms:
                self.kept.setdefault((w.key.model, w.key.version), []).append(w)
            if w.restored:
                continue
            late = self._take_late(w.key)
            late_at[(w.key.model, w.key.version, end)] = late
            closed.append(
                ClosedWindow(
                    key=w.key,
                    end_ms=end,
                    state=w.state,
                    first_offset=w.first_offset,
                    last_offset=w.last_offset,
                    events=w.events,
                    late_event_count=late,
                )
            )
        self._sliding_due += self._due_sliding(late_at)
        self._forget_unneeded()
        return closed

    def sliding_ready(self) -> list[SlidingWindow[S]]:
        """Take the sliding windows that became due at the last :meth:`close_ready`
        calls, by end (call it after each one: they are not repeated)."""
        due, self._sliding_due = self._sliding_due, []
        return due

    def _due_sliding(self, late_at: dict[tuple[str, str, int], int]) -> list[SlidingWindow[S]]:
        """Sliding windows whose end the watermark reached since the last call."""
        due: list[SlidingWindow[S]] = []
        for (model, version), kept in self.kept.items():
            sizes = self.plan.sizes(model)
            clock = self.clock(model)
            mark = self.max_time[clock] - self.lateness_ms
            done = self.sliding_done.get(clock)
            if done is not None and mark - mark % sizes.slide_ms <= done:
                continue  # no end on the slide passed since the last call (most steps)
            ends: set[int] = set()
            for w in kept:  # ends on the slide whose span [e - sliding, e) holds w
                first = w.key.start_ms + sizes.slide_ms - w.key.start_ms % sizes.slide_ms
                ends.update(range(first, w.key.start_ms + sizes.sliding_ms + 1, sizes.slide_ms))
            for end in sorted(e for e in ends if e <= mark and (done is None or e > done)):
                start = end - sizes.sliding_ms
                if start >= self.sliding_from.get(clock, start):
                    late = late_at.get((model, version, end), 0)
                    due.append(self._sliding(WindowKey(start, model, version), end, kept, late))
        for model, newest in self.max_time.items():  # never back: a replay starts lower
            if self.shared_clock or self.plan.sizes(model).sliding_ms:
                mark = newest - self.lateness_ms
                self.sliding_done[model] = max(mark, self.sliding_done.get(model, mark))
        due.sort(key=lambda s: (s.end_ms, s.key))
        return due

    @staticmethod
    def _sliding(
        key: WindowKey, end: int, kept: list[OpenWindow[S]], late: int
    ) -> SlidingWindow[S]:
        parts = [w for w in kept if key.start_ms <= w.key.start_ms < end]
        return SlidingWindow(
            key=key,
            end_ms=end,
            parts=[w.state for w in parts],
            first_offset=min(w.first_offset for w in parts),
            last_offset=max(w.last_offset for w in parts),
            events=sum(w.events for w in parts),
            late_event_count=late,
            keys=[w.key for w in parts],
            ranges=[(w.first_offset, w.last_offset) for w in parts],
        )

    def _forget_unneeded(self) -> None:
        """Drop kept windows older than any future sliding window can reach."""
        for pair in list(self.kept):
            sizes = self.plan.sizes(pair[0])
            frontier = sizes.frontier(self.max_time[self.clock(pair[0])] - self.lateness_ms)
            still = [w for w in self.kept[pair] if w.key.start_ms >= frontier]
            if still:
                self.kept[pair] = still
            else:
                del self.kept[pair]

    def _take_late(self, key: WindowKey) -> int:
        entries = self.pending_late.get((key.model, key.version))
        if not entries:
            return 0
        due = [e for e in entries if e[0] <= key.start_ms]
        if due:
            self.pending_late[(key.model, key.version)] = [
                e for e in entries if e[0] > key.start_ms
            ]
        return sum(e[1] for e in due)

    def _needed(self) -> list[OpenWindow[S]]:
        """Windows a restart must rebuild: open ones and kept ones still reachable."""
        kept = [
            w
            for (model, _), ws in self.kept.items()
            for w in ws
            if w.key.start_ms
            >= self.plan.sizes(model).frontier(self.max_time[self.clock(model)] - self.lateness_ms)
        ]
        return [*self.open.values(), *kept]

    def commit_offset(self) -> int | None:
        """Where a restart must start: the first event of the oldest window it must
        rebuild (open, or kept for sliding windows), else the next offset."""
        if self.next_offset < 0:
            return None
        firsts = [w.first_offset for w in self._needed()]
        return min([*firsts, self.next_offset])

    def checkpoint(self) -> Checkpoint | None:
        """The replay state to commit with :meth:`commit_offset` (None before any event)."""
        offset = self.commit_offset()
        if offset is None:
            return None
        late = {
            f"{m}{_SEP}{v}": [list(e) for e in es] for (m, v), es in self.pending_late.items() if es
        }
        oldest: dict[str, OpenWindow[S]] = {}
        for w in self._needed():
            clock = self.clock(w.key.model)
            if clock not in oldest or w.first_offset < oldest[clock].first_offset:
                oldest[clock] = w
        seeds: dict[str, int | None] = {
            model: None if w.seed == _NO_TIME else w.seed for model, w in oldest.items()
        }
        if self.position < self.replay_until:  # mid-replay: keep seeds not yet re-reached
            seeds = {**self.replay_seeds, **seeds}
        newest = dict(self.max_time)
        for model, mark in self.replay_marks.items():
            newest[model] = max(mark, newest.get(model, mark))
        return Checkpoint(offset, self.next_offset, newest, late, seeds)
