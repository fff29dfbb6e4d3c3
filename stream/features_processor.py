"""The features processor: InferenceEvents in, per-entity feature views in Redis out.

Driven by :class:`stream.runtime.loop.ProcessorLoop` like the drift and SLO processors
(consume, decode, dead-letter bad records, commit). Instead of emitting records when
windows close it merges each batch into per-(view, entity) bucket partials
(:mod:`schemas.feature_store`) and writes them to Redis in :meth:`close_ready`, which
the loop calls before it commits: offsets are committed only after the Redis write that
covers them, and the write itself records per partition how far it merged, so a replay
after a crash skips what Redis already holds (idempotent).

While Redis is unreachable the processor keeps consuming and merging (its memory grows
with distinct entities and buckets, not with events), retries every step, commits
nothing new, and the freshness gauge grows; nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import redis

from schemas.feature_store import EntityState, FeatureStore
from schemas.feature_views import FeatureView, FeatureViews
from schemas.inference_batch import InferenceBatch
from stream import features_metrics as m
from stream.runtime.checkpoint import Checkpoint
from stream.runtime.loop import WindowOutput

log = logging.getLogger(__name__)

_OK = 0  # OUTCOMES.index("ok")
_SHADOW = 2  # VARIANTS.index("shadow")

Pending = dict[tuple[str, str], EntityState]


class _Partition:
    """One assigned partition: what Redis holds of it, and what is merged but not written."""

    def __init__(self) -> None:
        #: next offset already merged into Redis (None: not read yet)
        self.merged: int | None = None
        #: one past the last offset processed (written or pending)
        self.next_offset: int | None = None
        #: one past the last offset whose events are in Redis
        self.written: int | None = None
        self.pending: Pending = {}


class FeatureProcessor:
    """Feature views of every assigned partition of one input topic.

    :param views: the declared views (all on the loop's input topic).
    :param store: reads and writes the hashes and the merged-up-to offsets.
    :param retry_s: pause after a failed Redis call before the loop goes on.
    :param stopping: true once the loop was asked to stop (ends the wait for Redis).
    """

    def __init__(
        self,
        views: FeatureViews,
        store: FeatureStore,
        *,
        retry_s: float = 1.0,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.views = tuple(views)
        self.store = store
        self.retry_s = retry_s
        self.stopping = stopping
        self.partitions: dict[tuple[str, int], _Partition] = {}
        self._seen: dict[str, int] = {}
        self._written: dict[str, int] = {}

    # -- partitions -------------------------------------------------------------------

    def assign(self, topic: str, partition: int, checkpoint: Checkpoint | None) -> None:
        """Start a partition; how far Redis holds it is read before its first batch."""
        self.partitions[(topic, partition)] = _Partition()

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition and its unwritten merges (its next owner replays them)."""
        self.partitions.pop((topic, partition), None)

    def checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        """Commit up to what is in Redis, never further."""
        state = self.partitions.get((topic, partition))
        if state is None or state.written is None:
            return None
        return Checkpoint(commit_offset=state.written, next_offset=state.written)

    # -- events -----------------------------------------------------------------------

    def process(
        self, topic: str, partition: int, batch: InferenceBatch, offsets: npt.NDArray[np.int64]
    ) -> None:
        """Merge a decoded batch of one partition into its pending partials."""
        state = self.partitions.get((topic, partition))
        if state is None:
            state = self.partitions[(topic, partition)] = _Partition()
        if state.merged is None:
            merged = self._merged_offsets(topic)
            if merged is None:  # stopping before Redis answered: nothing merged or committed
                return
            state.merged = merged.get(partition, 0)
        if len(batch):
            self._merge(state, batch, offsets[batch.index])
        if offsets.size:
            last = int(offsets.max()) + 1
            state.next_offset = max(state.next_offset or 0, last)

    def _merged_offsets(self, topic: str) -> dict[int, int] | None:
        """Redis's merged-up-to offsets; waits (retrying) for Redis unless stopping."""
        while True:
            try:
                return self.store.merged_offsets(topic)
            except redis.RedisError as exc:
                m.REDIS_ERRORS.inc()
                log.warning("Redis unreachable, waiting to read merged offsets: %s", exc)
                if self.stopping():
                    return None
                time.sleep(self.retry_s)

    def _merge(
        self, state: _Partition, batch: InferenceBatch, rows_offset: npt.NDArray[np.int64]
    ) -> None:
        fresh = rows_offset >= (state.merged or 0)
        usable = fresh & (batch.outcome == _OK) & (batch.variant != _SHADOW)
        has_entity = np.fromiter((e is not None for e in batch.entity_id), bool, len(batch))
        for view in self.views:
            accepted = np.fromiter((view.accepts(n) for n in batch.model_name), bool, len(batch))
            self._count_skips(view, accepted, fresh, has_entity, batch)
            rows = np.flatnonzero(usable & accepted & has_entity)
            if rows.size:
                self._merge_view(state.pending, view, batch, rows)

    @staticmethod
    def _count_skips(
        view: FeatureView,
        accepted: npt.NDArray[np.bool_],
        fresh: npt.NDArray[np.bool_],
        has_entity: npt.NDArray[np.bool_],
        batch: InferenceBatch,
    ) -> None:
        replayed = int((accepted & ~fresh).sum())
        if replayed:
            m.SKIPPED.labels(view.name, "replayed").inc(replayed)
        live = accepted & fresh
        for reason, mask in (
            ("no_entity", live & ~has_entity),
            ("not_ok", live & has_entity & (batch.outcome != _OK)),
            ("shadow", live & has_entity & (batch.outcome == _OK) & (batch.variant == _SHADOW)),
        ):
            count = int(mask.sum())
            if count:
                m.SKIPPED.labels(view.name, reason).inc(count)

    def _merge_view(
        self,
        pending: Pending,
        view: FeatureView,
        batch: InferenceBatch,
        rows: npt.NDArray[np.int64],
    ) -> None:
        fields = view.fields
        values = batch.feature_matrix(fields, rows) if fields else np.empty((rows.size, 0))
        present = ~np.isnan(values)
        times = batch.event_time[rows].tolist()
        for j, row in enumerate(rows.tolist()):
            entity = batch.entity_id[row]
            assert entity is not None  # noqa: S101 - rows were filtered on it
            delta = pending.get((view.name, entity))
            if delta is None:
                delta = pending[(view.name, entity)] = EntityState()
            carried = {f: float(values[j, k]) for k, f in enumerate(fields) if present[j, k]}
            delta.add(view, times[j], carried)
        m.EVENTS.labels(view.name).inc(rows.size)
        newest = int(batch.event_time[rows].max())
        self._seen[view.name] = max(self._seen.get(view.name, newest), newest)
        self._written.setdefault(view.name, int(batch.event_time[rows].min()))
        self._set_lag(view.name)

    def _set_lag(self, view: str) -> None:
        seen, written = self._seen.get(view), self._written.get(view)
        if seen is not None and written is not None:
            m.LAG.labels(view).set(max(0, seen - written) / 1000.0)

    # -- writing ----------------------------------------------------------------------

    def close_ready(self) -> Sequence[WindowOutput]:
        """Write every pending merge (and how far each partition got) to Redis.

        Returns no records: the loop has nothing to produce, only to commit.
        """
        due = {
            key: s
            for key, s in self.partitions.items()
            if s.next_offset is not None and s.next_offset != s.written
        }
        if not due:
            return []
        deltas: Pending = {}
        for s in due.values():
            for pair, delta in s.pending.items():
                into = deltas.get(pair)
                if into is None:
                    deltas[pair] = into = EntityState()
                into.merge(self._view(pair[0]), delta)
        marks = {
            f"{topic}:{partition}": max(s.next_offset or 0, s.merged or 0)
            for (topic, partition), s in due.items()
        }
        try:
            result = self.store.write(deltas, marks)
        except redis.RedisError as exc:
            m.REDIS_ERRORS.inc()
            log.warning("feature write failed (kept, retried next batch): %s", exc)
            time.sleep(self.retry_s)
            return []
        for s in due.values():
            s.written, s.pending = s.next_offset, {}
            s.merged = max(s.merged or 0, s.next_offset or 0)
        self._after_write(deltas, result.newest, result.expired_events)
        return []

    def _after_write(self, deltas: Pending, newest: Mapping[str, int], expired: int) -> None:
        per_view: dict[str, int] = {}
        for view, _ in deltas:
            per_view[view] = per_view.get(view, 0) + 1
        for view, count in per_view.items():
            m.WRITES.labels(view).inc(count)
        for view, event_time in newest.items():
            self._written[view] = max(self._written.get(view, event_time), event_time)
            m.MATERIALISED_TIME.labels(view).set(self._written[view] / 1000.0)
            self._set_lag(view)
        if expired:
            log.debug("%d events left their windows in this write", expired)

    def _view(self, name: str) -> FeatureView:
        return next(v for v in self.views if v.name == name)
