"""The Redis side of feature views: mergeable bucket partials, the hash layout, writes, reads.

One hash per view and entity, ``driftline:features:<view>:<entity>``::

    <feature name>  -> the value as a decimal string (absent: no value, e.g. no event
                       in the window had the field)
    _event_time     -> newest event time (ms) the values reflect
    _buckets        -> the partials the values were computed from (JSON), so the next
                       write merges new events into them instead of recounting

Why partials per bucket: a window aggregate over event time cannot be updated by
subtraction when events expire (min, max, last), but per-bucket partials (count, sum,
min, max, last) merge in any order, so an entity's window is the merge of the buckets
that overlap ``(event_time - window, event_time]``; buckets that no longer overlap are
dropped. Expiry is exact to one bucket (a 7-day window in hourly buckets may include up
to an hour more). Written by the features processor, read by serving: a contract, so it
lives here (like ``rollout_state.py``).

Idempotent writes: each transaction also records, per input partition, the next offset
whose events it has merged (``driftline:features:offsets:<group>``); a processor that
replays from an older committed offset skips what Redis already holds. The transaction
WATCHes the entity hashes it read, so two processors merging into one entity retry
instead of losing an update.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from schemas.feature_views import FeatureView

KEY_PREFIX = "driftline:features:"
EVENT_TIME = "_event_time"
BUCKETS = "_buckets"


def entity_key(view: str, entity: str) -> str:
    """The Redis key of one view's hash for one entity."""
    return f"{KEY_PREFIX}{view}:{entity}"


def offsets_key(group: str) -> str:
    """Per-partition merged-up-to offsets of one processor group (``topic:partition``)."""
    return f"{KEY_PREFIX}offsets:{group}"


@dataclass(slots=True)
class FieldPartial:
    """count, sum, min, max and the newest value (with its event time) of one field."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    last_time: int = -1
    last: float = math.nan

    def add(self, value: float, event_time: int) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if event_time >= self.last_time:  # a tie: the later processed wins (replays agree)
            self.last_time, self.last = event_time, value

    def merge(self, other: FieldPartial) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        if other.last_time >= self.last_time:
            self.last_time, self.last = other.last_time, other.last

    def to_list(self) -> list[Any]:
        return [self.count, self.total, self.low, self.high, self.last_time, self.last]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> FieldPartial:
        count, total, low, high, last_time, last = data
        return cls(int(count), float(total), float(low), float(high), int(last_time), float(last))


@dataclass(slots=True)
class BucketPartial:
    """One bucket of one entity: events counted and a partial per field."""

    events: int = 0
    fields: dict[str, FieldPartial] = field(default_factory=dict)

    def merge(self, other: BucketPartial) -> None:
        self.events += other.events
        for name, partial in other.fields.items():
            mine = self.fields.get(name)
            if mine is None:
                self.fields[name] = FieldPartial(*partial.to_list())
            else:
                mine.merge(partial)


@dataclass(slots=True)
class EntityState:
    """An entity's partials by bucket start (ms) and the newest event time merged."""

    event_time: int = -1
    buckets: dict[int, BucketPartial] = field(default_factory=dict)

    def add(self, view: FeatureView, event_time: int, values: Mapping[str, float]) -> None:
        """Count one event (``values``: the view's fields it carries, finite numbers)."""
        start = event_time - event_time % view.bucket_ms
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = BucketPartial()
        bucket.events += 1
        for name, value in values.items():
            partial = bucket.fields.get(name)
            if partial is None:
                partial = bucket.fields[name] = FieldPartial()
            partial.add(value, event_time)
        self.event_time = max(self.event_time, event_time)

    def merge(self, view: FeatureView, other: EntityState) -> int:
        """Merge ``other``'s buckets; drop those outside the window; return events dropped."""
        for start, bucket in other.buckets.items():
            mine = self.buckets.get(start)
            if mine is None:
                self.buckets[start] = mine = BucketPartial()
            mine.merge(bucket)
        self.event_time = max(self.event_time, other.event_time)
        return self.expire(view)

    def expire(self, view: FeatureView) -> int:
        """Drop buckets that end at or before ``event_time - window``; return their events."""
        horizon = self.event_time - view.window_ms
        old = [s for s in self.buckets if s + view.bucket_ms <= horizon]
        return sum(self.buckets.pop(s).events for s in old)

    def values(self, view: FeatureView) -> dict[str, float | None]:
        """Every feature of ``view`` over the buckets held (call :meth:`expire` first)."""
        merged: dict[str, FieldPartial] = {}
        events = 0
        for bucket in self.buckets.values():
            events += bucket.events
            for name, partial in bucket.fields.items():
                if name in merged:
                    merged[name].merge(partial)
                else:
                    merged[name] = FieldPartial(*partial.to_list())
        out: dict[str, float | None] = {}
        for spec in view.features:
            if spec.aggregate == "count":
                out[spec.name] = float(events)
                continue
            p = merged.get(spec.field or "")
            if p is None or p.count == 0:
                out[spec.name] = None
            elif spec.aggregate == "sum":
                out[spec.name] = p.total
            elif spec.aggregate == "mean":
                out[spec.name] = p.total / p.count
            elif spec.aggregate == "min":
                out[spec.name] = p.low
            elif spec.aggregate == "max":
                out[spec.name] = p.high
            else:
                out[spec.name] = p.last
        return out

    def buckets_json(self) -> str:
        body = {
            str(start): [b.events, {n: p.to_list() for n, p in b.fields.items()}]
            for start, b in sorted(self.buckets.items())
        }
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_hash(cls, event_time: bytes | None, buckets: bytes | None) -> EntityState:
        """The state stored in a hash (empty when the hash, or its fields, are absent)."""
        state = cls()
        if buckets:
            for start, (events, fields) in json.loads(buckets).items():
                state.buckets[int(start)] = BucketPartial(
                    int(events), {n: FieldPartial.from_list(p) for n, p in fields.items()}
                )
        if event_time:
            state.event_time = int(event_time)
        return state


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one :meth:`FeatureStore.write` did."""

    entities: int
    expired_events: int
    #: newest event time written per view (ms)
    newest: dict[str, int]


class FeatureStore:
    """Read-merge-write of entity hashes and the partitions' merged-up-to offsets.

    :param client: a redis-py client.
    :param views: the declared views (by name).
    :param group: the processor's consumer group (names its offsets hash).
    """

    def __init__(self, client: redis.Redis, views: Iterable[FeatureView], group: str = "") -> None:
        self.client = client
        self.views = {v.name: v for v in views}
        self.group = group

    def merged_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> next offset already merged into Redis (for ``topic``)."""
        raw: dict[Any, Any] = self.client.hgetall(offsets_key(self.group))
        out: dict[int, int] = {}
        for key, value in raw.items():
            text = key.decode() if isinstance(key, bytes) else str(key)
            name, _, partition = text.rpartition(":")
            if name == topic and partition.isdigit():
                out[int(partition)] = int(value)
        return out

    def write(
        self,
        deltas: Mapping[tuple[str, str], EntityState],
        offsets: Mapping[str, int] | None = None,
        *,
        max_retries: int = 20,
    ) -> WriteResult:
        """Merge ``deltas`` ((view, entity) -> new partials) into Redis in one transaction.

        :param offsets: ``"topic:partition"`` -> next offset merged, written atomically
            with the hashes (the idempotence marker).
        :raises redis.RedisError: Redis unreachable (the caller keeps its deltas and
            retries: nothing was written).
        """
        keys = {pair: entity_key(*pair) for pair in deltas}
        for _ in range(max_retries):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    if keys:
                        pipe.watch(*keys.values())  # type: ignore[no-untyped-call]
                    stored = {
                        pair: EntityState.from_hash(*_two(pipe.hmget(key, EVENT_TIME, BUCKETS)))
                        for pair, key in keys.items()
                    }
                    pipe.multi()
                    result = self._queue(pipe, deltas, stored, keys)
                    if offsets:
                        marks: dict[str | bytes, str] = {k: str(v) for k, v in offsets.items()}
                        pipe.hset(offsets_key(self.group), mapping=marks)  # type: ignore[arg-type]
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise redis.RedisError(f"feature write lost {max_retries} races on the same entities")

    def _queue(
        self,
        pipe: Any,
        deltas: Mapping[tuple[str, str], EntityState],
        stored: Mapping[tuple[str, str], EntityState],
        keys: Mapping[tuple[str, str], str],
    ) -> WriteResult:
        expired = 0
        newest: dict[str, int] = {}
        for pair, delta in deltas.items():
            view = self.views[pair[0]]
            state = stored[pair]
            expired += state.merge(view, delta)
            mapping: dict[str, str] = {
                EVENT_TIME: str(state.event_time),
                BUCKETS: state.buckets_json(),
            }
            for name, value in state.values(view).items():
                if value is not None:
                    mapping[name] = repr(value)
            key = keys[pair]
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, max(1, math.ceil(view.ttl_s)))
            newest[view.name] = max(newest.get(view.name, -1), state.event_time)
        return WriteResult(len(deltas), expired, newest)


def _two(values: Any) -> tuple[bytes | None, bytes | None]:
    """The two fields of an HMGET (a client without ``decode_responses``: bytes or None)."""
    first, second = values
    return first, second


@dataclass(frozen=True, slots=True)
class OnlineValue:
    """One feature of one entity as served: the value (None: none) and its event time."""

    value: float | None
    event_time_ms: int | None


def read_online(
    client: redis.Redis, view: FeatureView, entities: Sequence[str], features: Sequence[str]
) -> list[dict[str, OnlineValue]]:
    """``features`` of ``view`` for each entity, in order; absent entities give Nones."""
    with client.pipeline(transaction=False) as pipe:
        for entity in entities:
            pipe.hmget(entity_key(view.name, entity), EVENT_TIME, *features)
        rows = pipe.execute()
    out: list[dict[str, OnlineValue]] = []
    for row in rows:
        event_time = int(row[0]) if row[0] is not None else None
        out.append(
            {
                name: OnlineValue(float(raw) if raw is not None else None, event_time)
                for name, raw in zip(features, row[1:], strict=True)
            }
        )
    return out
