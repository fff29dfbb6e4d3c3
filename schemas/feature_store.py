"""The Redis side of feature views: mergeable bucket partials, the hash layout, writes, reads.

One hash per view and entity, ``driftline:features:<view>:<entity>``::

    <feature name>  -> the value as a decimal string (absent: no value, e.g. no event
                       in the window had the field)
    _event_time     -> newest event time (ms) the values reflect
    _buckets        -> the partials the values were computed from (JSON), so the next
                       write merges new events into them instead of recounting
    _rev            -> a random token per write: a writer that wrote it itself skips
                       reading and parsing _buckets back (its cache is still current)

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

import math
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from schemas.feature_views import FeatureView

KEY_PREFIX = "driftline:features:"
EVENT_TIME = "_event_time"
BUCKETS = "_buckets"
REV = "_rev"


def entity_key(view: str, entity: str) -> str:
    """The Redis key of one view's hash for one entity."""
    return f"{KEY_PREFIX}{view}:{entity}"


def offsets_key(group: str) -> str:
    """Per-partition merged-up-to offsets of one processor group (``topic:partition``)."""
    return f"{KEY_PREFIX}offsets:{group}"


#: One field's partial: [count, sum, min, max, newest event time, newest value]. Plain
#: lists (not objects) because an entity's hash holds one per field and bucket, parsed
#: and merged on every write: measured 3x faster than a dataclass per partial.
Partial = list[Any]
#: One bucket: [events, {field: Partial}].
Bucket = list[Any]


def _add_value(partial: Partial, value: float, event_time: int) -> None:
    partial[0] += 1
    partial[1] += value
    if value < partial[2]:
        partial[2] = value
    if value > partial[3]:
        partial[3] = value
    if event_time >= partial[4]:  # a tie: the later processed wins (replays agree)
        partial[4], partial[5] = event_time, value


def _merge_partial(into: Partial, other: Partial) -> None:
    into[0] += other[0]
    into[1] += other[1]
    if other[2] < into[2]:
        into[2] = other[2]
    if other[3] > into[3]:
        into[3] = other[3]
    if other[4] >= into[4]:
        into[4], into[5] = other[4], other[5]


@dataclass(slots=True)
class EntityState:
    """An entity's partials by bucket start (ms) and the newest event time merged."""

    event_time: int = -1
    buckets: dict[int, Bucket] = field(default_factory=dict)

    def add(self, view: FeatureView, event_time: int, values: Mapping[str, float]) -> None:
        """Count one event (``values``: the view's fields it carries, finite numbers)."""
        start = event_time - event_time % view.bucket_ms
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = [0, {}]
        bucket[0] += 1
        fields: dict[str, Partial] = bucket[1]
        for name, value in values.items():
            partial = fields.get(name)
            if partial is None:
                fields[name] = [1, value, value, value, event_time, value]
            else:
                _add_value(partial, value, event_time)
        if event_time > self.event_time:
            self.event_time = event_time

    def merge(self, view: FeatureView, other: EntityState) -> int:
        """Merge ``other``'s buckets; drop those outside the window; return events dropped."""
        for start, bucket in other.buckets.items():
            mine = self.buckets.get(start)
            if mine is None:
                self.buckets[start] = [bucket[0], {n: list(p) for n, p in bucket[1].items()}]
                continue
            mine[0] += bucket[0]
            fields: dict[str, Partial] = mine[1]
            for name, partial in bucket[1].items():
                if name in fields:
                    _merge_partial(fields[name], partial)
                else:
                    fields[name] = list(partial)
        self.event_time = max(self.event_time, other.event_time)
        return self.expire(view)

    def expire(self, view: FeatureView) -> int:
        """Drop buckets that end at or before ``event_time - window``; return their events."""
        horizon = self.event_time - view.window_ms - view.bucket_ms  # properties: read once
        old = [s for s in self.buckets if s <= horizon]
        return sum(self.buckets.pop(s)[0] for s in old)

    def values(self, view: FeatureView) -> dict[str, float | None]:
        """Every feature of ``view`` over the buckets held (call :meth:`expire` first)."""
        events = 0
        merged: dict[str, Partial] = {}
        for bucket in self.buckets.values():
            events += bucket[0]
            for name, partial in bucket[1].items():
                if name in merged:
                    _merge_partial(merged[name], partial)
                else:
                    merged[name] = list(partial)
        out: dict[str, float | None] = {}
        for spec in view.features:
            if spec.aggregate == "count":
                out[spec.name] = float(events)
                continue
            p = merged.get(spec.field or "")
            if p is None or p[0] == 0:
                out[spec.name] = None
            else:
                out[spec.name] = {
                    "sum": p[1], "mean": p[1] / p[0], "min": p[2], "max": p[3], "last": p[5]
                }[spec.aggregate]  # fmt: skip
        return out

    def buckets_json(self) -> bytes:
        return orjson.dumps({str(start): b for start, b in self.buckets.items()})

    @classmethod
    def from_hash(cls, event_time: bytes | None, buckets: bytes | None) -> EntityState:
        """The state stored in a hash (empty when the hash, or its fields, are absent)."""
        state = cls()
        if buckets:
            state.buckets = {int(start): b for start, b in orjson.loads(buckets).items()}
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

    def __init__(
        self,
        client: redis.Redis,
        views: Iterable[FeatureView],
        group: str = "",
        cache_entities: int = 100_000,
    ) -> None:
        self.client = client
        self.views = {v.name: v for v in views}
        self.group = group
        self.cache_entities = cache_entities
        #: (view, entity) -> (the hash's _rev, the state it holds): a hash whose _rev is
        #: unchanged since this store wrote it is not read back and parsed again.
        self._cache: OrderedDict[tuple[str, str], tuple[bytes, EntityState]] = OrderedDict()

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
                    # taken out of the cache: a failed transaction must not leave them
                    # merged-but-unwritten there
                    cached = {pair: self._cache.pop(pair, None) for pair in keys}
                    revs = [c[0] if c else b"" for c in cached.values()]
                    raw = _read_states(pipe, list(keys.values()), revs) if keys else []
                    stored = {
                        pair: _stored_state(row, cached[pair])
                        for pair, row in zip(keys, raw, strict=True)
                    }
                    pipe.multi()
                    result, written = self._queue(pipe, deltas, stored, keys)
                    if offsets:
                        marks: dict[str | bytes, str] = {k: str(v) for k, v in offsets.items()}
                        pipe.hset(offsets_key(self.group), mapping=marks)  # type: ignore[arg-type]
                    pipe.execute()
                    self._remember(written)
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
    ) -> tuple[WriteResult, dict[tuple[str, str], tuple[bytes, EntityState]]]:
        expired = 0
        newest: dict[str, int] = {}
        written: dict[tuple[str, str], tuple[bytes, EntityState]] = {}
        for pair, delta in deltas.items():
            view = self.views[pair[0]]
            state = stored[pair]
            expired += state.merge(view, delta)
            rev = uuid.uuid4().hex[:16].encode()
            written[pair] = (rev, state)
            mapping: dict[str, str | bytes] = {
                EVENT_TIME: str(state.event_time),
                BUCKETS: state.buckets_json(),
                REV: rev,
            }
            for name, value in state.values(view).items():
                if value is not None:
                    mapping[name] = repr(value)
            key = keys[pair]
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, max(1, math.ceil(view.ttl_s)))
            newest[view.name] = max(newest.get(view.name, -1), state.event_time)
        return WriteResult(len(deltas), expired, newest), written

    def _remember(self, written: Mapping[tuple[str, str], tuple[bytes, EntityState]]) -> None:
        for pair, entry in written.items():
            self._cache[pair] = entry
        while len(self._cache) > self.cache_entities:
            self._cache.popitem(last=False)


#: Every key's _event_time and _rev, and its _buckets unless its _rev is the one this
#: store last wrote (ARGV[i]): one round trip, where a pipeline under WATCH runs each
#: command at once (3,000 HMGETs were 3,000 round trips: measured).
_READ_STATES = """
local out = {}
for i, key in ipairs(KEYS) do
  local head = redis.call('HMGET', key, '_event_time', '_rev')
  if head[2] and head[2] == ARGV[i] then
    out[i] = {head[1], head[2]}
  else
    out[i] = {head[1], head[2], redis.call('HGET', key, '_buckets')}
  end
end
return out
"""


def _read_states(pipe: Any, keys: list[str], revs: list[bytes]) -> list[Any]:
    return list(pipe.eval(_READ_STATES, len(keys), *keys, *revs))


def _stored_state(row: Any, cached: tuple[bytes, EntityState] | None) -> EntityState:
    """The state a hash holds: the cached one when the read skipped its buckets."""
    if len(row) == 2 and cached is not None:
        return cached[1]
    event_time = row[0] if row[0] else None
    buckets = row[2] if len(row) > 2 and row[2] else None
    return EntityState.from_hash(event_time, buckets)


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
