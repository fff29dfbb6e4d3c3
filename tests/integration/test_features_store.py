"""The features processor against a real Redis, without Kafka: a replay after a crash
does not double-count, and a Redis outage loses nothing, commits nothing and shows as lag."""

from __future__ import annotations

import numpy as np
import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from driftline.ports import LOOPBACK, free_port
from schemas.codec import SingleObjectCodec
from schemas.feature_store import EntityState, FeatureStore, entity_key
from schemas.feature_views import FeatureViews
from schemas.inference_batch import decode_inference_batch
from stream.features_processor import FeatureProcessor
from tests.records_factory import inference_event

CODEC = SingleObjectCodec()
TOPIC = "inference.events"
VIEWS = FeatureViews.model_validate(
    {
        "views": [
            {
                "name": "replay_stats",
                "entity": "user_id",
                "features": [
                    {"name": "n", "aggregate": "count"},
                    {"name": "total", "aggregate": "sum", "field": "amount"},
                ],
            }
        ]
    }
)
T0 = 1_764_000_000_000


def _batch(start: int, n: int) -> tuple[object, np.ndarray]:
    values = [
        CODEC.encode(
            "InferenceEvent",
            inference_event(
                i,
                "m",
                event_time=T0 + i * 1000,
                variant="baseline",
                features={"amount": float(i)},
                entity_id=f"u{i % 3}",
            ),
        )
        for i in range(start, start + n)
    ]
    return decode_inference_batch(values, CODEC), np.arange(start, start + n, dtype=np.int64)


def _stored(client: redis.Redis, user: str) -> tuple[float, float]:
    raw = client.hmget(entity_key("replay_stats", user), "n", "total")
    return float(raw[0] or 0), float(raw[1] or 0)


def test_a_replay_from_an_older_offset_is_not_counted_twice(redis_client: redis.Redis) -> None:
    first = FeatureProcessor(VIEWS, FeatureStore(redis_client, VIEWS, "g"))
    first.assign(TOPIC, 0, None)
    batch, offsets = _batch(0, 30)
    first.process(TOPIC, 0, batch, offsets)  # type: ignore[arg-type]
    first.close_ready()
    assert first.checkpoint(TOPIC, 0).commit_offset == 30  # type: ignore[union-attr]
    # crash before the Kafka commit: a new processor re-reads 0..29, then 30..44
    again = FeatureProcessor(VIEWS, FeatureStore(redis_client, VIEWS, "g"))
    again.assign(TOPIC, 0, None)
    for start, n in ((0, 30), (30, 15)):
        batch, offsets = _batch(start, n)
        again.process(TOPIC, 0, batch, offsets)  # type: ignore[arg-type]
        again.close_ready()
    for u in range(3):
        amounts = [i for i in range(45) if i % 3 == u]
        assert _stored(redis_client, f"u{u}") == (len(amounts), sum(amounts))
    assert again.checkpoint(TOPIC, 0).commit_offset == 45  # type: ignore[union-attr]


def test_redis_down_keeps_merges_commits_nothing_and_shows_lag(redis_client: redis.Redis) -> None:
    dead = redis.Redis(  # nothing listens there; no client-side retries to wait through
        host=LOOPBACK, port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    store = FeatureStore(redis_client, VIEWS, "h")
    processor = FeatureProcessor(VIEWS, store, retry_s=0.01)
    processor.assign(TOPIC, 0, None)
    batch, offsets = _batch(0, 10)
    processor.process(TOPIC, 0, batch, offsets)  # type: ignore[arg-type]
    store.client = dead  # Redis goes away after the merged offsets were read
    processor.close_ready()
    batch, offsets = _batch(10, 20)
    processor.process(TOPIC, 0, batch, offsets)  # type: ignore[arg-type]
    assert processor.close_ready() == []
    assert processor.checkpoint(TOPIC, 0) is None, "nothing committed past Redis"
    lag = REGISTRY.get_sample_value("driftline_feature_view_lag_seconds", {"view": "replay_stats"})
    assert lag == pytest.approx(29.0)  # newest seen (29 s) minus nothing written (0 s)
    store.client = redis_client  # back: everything merged so far is written once
    processor.close_ready()
    assert processor.checkpoint(TOPIC, 0).commit_offset == 30  # type: ignore[union-attr]
    assert _stored(redis_client, "u0") == (10, sum(range(0, 30, 3)))
    lag = REGISTRY.get_sample_value("driftline_feature_view_lag_seconds", {"view": "replay_stats"})
    assert lag == 0.0


def test_a_writer_rereads_what_another_writer_or_expiry_changed(redis_client: redis.Redis) -> None:
    """The store skips re-reading hashes it wrote itself (``_rev``); anyone else's write
    (a backfill, another processor) or an expired hash must still be read, never lost."""
    view = VIEWS.views[0]

    def delta(*amounts: float) -> dict[tuple[str, str], EntityState]:
        state = EntityState()
        for k, amount in enumerate(amounts):
            state.add(view, T0 + k, {"amount": amount})
        return {("replay_stats", "u7"): state}

    mine, other = FeatureStore(redis_client, VIEWS, "a"), FeatureStore(redis_client, VIEWS, "b")
    mine.write(delta(1.0))
    mine.write(delta(2.0))  # from the cache
    assert _stored(redis_client, "u7") == (2, 3.0)
    other.write(delta(10.0))
    mine.write(delta(100.0))  # its cache is stale: re-read
    assert _stored(redis_client, "u7") == (4, 113.0)
    redis_client.delete(entity_key("replay_stats", "u7"))  # the TTL ran out
    mine.write(delta(5.0))
    assert _stored(redis_client, "u7") == (1, 5.0)
