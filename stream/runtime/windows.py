"""Event-time tumbling windows of one input partition, with a watermark and late events.

Rules (per model; every event of a model is on one partition, in order):

- an event at time ``t`` belongs to the window ``[s, s + size)`` with ``s = floor(t/size)*size``,
  keyed by ``(model, version, s)``;
- the model's watermark is its newest event time seen so far minus the allowed
  lateness; a window closes once the watermark reaches its end;
- an event is **late** when its window had closed before it arrived (judged against the
  events before it, not against the end of its batch); it is counted and reported in the
  next DriftScore of its (model, version): the first window, at or after the one that
  was open when it arrived, that closes.

Every rule is decided event by event in partition order (vectorised per batch with a
running maximum), so the result does not depend on how the stream was cut into batches
or spread over instances. ``tests/unit/test_drift_windows.py`` checks that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from stream.runtime.checkpoint import Checkpoint

IntArray = npt.NDArray[np.int64]
S = TypeVar("S")
_SEP = "\x1f"
_NO_TIME = np.iinfo(np.int64).min // 2


@dataclass(frozen=True, slots=True, order=True)
class WindowKey:
    """The natural key of a window and of its DriftScore."""

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
    """Open windows, watermarks and unreported late events of one input partition.

    :param size_ms: window length.
    :param lateness_ms: allowed lateness.
    :param new_state: makes the empty state of a new window (a WindowSketch).
    :param checkpoint: restore after a restart: offsets before ``next_offset`` were
        processed already; events among them whose window is closed are skipped.
    """

    def __init__(
        self,
        size_ms: int,
        lateness_ms: int,
        new_state: Callable[[WindowKey], S],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        if size_ms <= 0 or lateness_ms < 0:
            raise ValueError(
                f"size_ms must be > 0 and lateness_ms >= 0, got {size_ms}, {lateness_ms}"
            )
        self.size_ms = size_ms
        self.lateness_ms = lateness_ms
        self.new_state = new_state
        self.open: dict[WindowKey, OpenWindow[S]] = {}
        self.max_time: dict[str, int] = dict(checkpoint.watermarks) if checkpoint else {}
        self.pending_late: dict[tuple[str, str], list[list[int]]] = {}
        if checkpoint:
            for name, entries in checkpoint.late.items():
                model, version = name.split(_SEP, 1)
                self.pending_late[(model, version)] = [list(e) for e in entries]
        self.replay_until = checkpoint.next_offset if checkpoint else -1
        self.next_offset = checkpoint.next_offset if checkpoint else -1

    def watermark(self, model: str) -> int | None:
        """The model's watermark (ms), None before its first event."""
        newest = self.max_time.get(model)
        return None if newest is None else newest - self.lateness_ms

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
    ) -> Ingested[S]:
        """:meth:`ingest` with (model, version) given as ``pairs[pair_codes[row]]``.

        What the processor calls: it factorises a batch's model columns once (no
        per-row Python). ``pairs`` may hold pairs no row uses.
        """
        out: Ingested[S] = Ingested()
        n = len(times)
        if n == 0:
            return out
        times = np.asarray(times, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        self.next_offset = max(self.next_offset, int(offsets.max()) + 1)
        used, pair_codes = np.unique(np.asarray(pair_codes, dtype=np.int64), return_inverse=True)
        pair_codes = pair_codes.reshape(-1).astype(np.int64)
        present = [pairs[u] for u in used.tolist()]  # only pairs with rows, in code order
        pair_model = [p[0] for p in present]
        model_index: dict[str, int] = {}
        model_of_pair = np.array([model_index.setdefault(m, len(model_index)) for m in pair_model])
        model_codes = model_of_pair[pair_codes]
        starts = times - np.mod(times, self.size_ms)
        before = self._running_max(model_codes, list(model_index), times)
        closed_at_arrival = starts + self.size_ms <= before - self.lateness_ms
        replayed = offsets < self.replay_until
        skip = closed_at_arrival & replayed
        late = closed_at_arrival & ~replayed
        out.replayed_skips = int(skip.sum())
        if late.any():
            self._count_late(out, present, pair_codes[late], before[late] - self.lateness_ms)
        counted = np.flatnonzero(~closed_at_arrival)
        if counted.size:
            self._group(out, present, pair_codes, starts, offsets, counted)
        return out

    def _running_max(self, model_codes: IntArray, names: list[str], times: IntArray) -> IntArray:
        """Newest event time of the row's model *before* the row (exclusive running max)."""
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
        targets = watermarks - np.mod(watermarks, self.size_ms)  # first window still open
        for code, target in zip(codes.tolist(), targets.tolist(), strict=True):
            pair = pairs[code]
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
    ) -> None:
        base = int(starts[rows].min())
        slot = (starts[rows] - base) // self.size_ms
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
                    key, self.new_state(key), int(member_offsets.min()), int(member_offsets.max())
                )
                self.open[key] = window
            else:
                window.first_offset = min(window.first_offset, int(member_offsets.min()))
                window.last_offset = max(window.last_offset, int(member_offsets.max()))
            window.events += len(members)
            out.groups.append((window, members))

    def close_ready(self) -> list[ClosedWindow[S]]:
        """Remove and return the windows whose end the watermark reached, oldest first."""
        ready = [
            w
            for key, w in self.open.items()
            if key.start_ms + self.size_ms <= self.max_time[key.model] - self.lateness_ms
        ]
        ready.sort(key=lambda w: w.key)
        closed: list[ClosedWindow[S]] = []
        for w in ready:
            del self.open[w.key]
            closed.append(
                ClosedWindow(
                    key=w.key,
                    end_ms=w.key.start_ms + self.size_ms,
                    state=w.state,
                    first_offset=w.first_offset,
                    last_offset=w.last_offset,
                    events=w.events,
                    late_event_count=self._take_late(w.key),
                )
            )
        return closed

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

    def commit_offset(self) -> int | None:
        """Where a restart must start: the oldest open window's first event, else next."""
        if self.next_offset < 0:
            return None
        firsts = [w.first_offset for w in self.open.values()]
        return min([*firsts, self.next_offset])

    def checkpoint(self) -> Checkpoint | None:
        """The replay state to commit with :meth:`commit_offset` (None before any event)."""
        offset = self.commit_offset()
        if offset is None:
            return None
        late = {
            f"{m}{_SEP}{v}": [list(e) for e in es] for (m, v), es in self.pending_late.items() if es
        }
        return Checkpoint(offset, self.next_offset, dict(self.max_time), late)
