"""Feature views end to end: events through the embedded broker, the processor, real Redis,
and serving's ``POST /features/online``; the values equal aggregates computed directly."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from confluent_kafka import Message
from fastapi.testclient import TestClient
from pydantic import SecretStr

from schemas.codec import SingleObjectCodec
from schemas.dead_letters import GROUP, REASON
from schemas.feature_store import BUCKETS, EVENT_TIME, entity_key, offsets_key
from schemas.feature_views import load_views
from schemas.settings import FeatureViewSettings, KafkaSettings, RedisSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS
from serving.app import create_app
from serving.state import ServingConfig
from stream.features_app import build_features_loop
from stream.runtime.loop import ProcessorLoop
from stream.settings import FeatureProcessorSettings
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_drift_processor_support import produce
from tests.records_factory import inference_event

CODEC = SingleObjectCodec()
HOUR = 3_600_000
DAY = 24 * HOUR
T_END = 1_764_000_000_000 - 1_764_000_000_000 % HOUR  # an hour boundary
VIEWS = """
[[views]]
name = "user_stats"
entity = "user_id"
window = "7d"
bucket = "1h"
models = ["payments"]

[[views.features]]
name = "transaction_count_7d"
aggregate = "count"
[[views.features]]
name = "avg_transaction_amount"
aggregate = "mean"
field = "amount"
[[views.features]]
name = "total_amount_7d"
aggregate = "sum"
field = "amount"
[[views.features]]
name = "min_amount_7d"
aggregate = "min"
field = "amount"
[[views.features]]
name = "max_amount_7d"
aggregate = "max"
field = "amount"
[[views.features]]
name = "last_amount"
aggregate = "last"
field = "amount"
"""
AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "transaction_count_7d": lambda a: float(len(a)),
    "avg_transaction_amount": lambda a: float(np.mean(a)),
    "total_amount_7d": lambda a: float(np.sum(a)),
    "min_amount_7d": lambda a: float(np.min(a)),
    "max_amount_7d": lambda a: float(np.max(a)),
}


def _traffic(rng: np.random.Generator) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """Events of 6 users, 4 models' keys, and each user's expected values.

    Each user has events inside the 7 days before their newest event and some more than
    8 days older (outside the window whatever the bucket rounding); the expected values
    are plain numpy over the in-window amounts.
    """
    records: list[tuple[str, bytes]] = []
    expected: dict[str, Any] = {}
    i = 0
    for u in range(6):
        user = f"u{u}"
        newest = T_END - u * 5 * HOUR - 1234
        n_in = int(rng.integers(20, 60))
        times = newest - np.sort(rng.integers(0, 6 * DAY, n_in))[::-1]
        times[-1] = newest
        amounts = np.round(rng.lognormal(3.0, 1.0, n_in), 2)
        old_times = newest - 8 * DAY - rng.integers(0, 3 * DAY, 5)
        order = rng.permutation(n_in + 5)  # out of event-time order on the topic
        all_times = np.concatenate([times, old_times])
        all_amounts = np.concatenate([amounts, np.full(5, 1e6)])
        for k in order.tolist():
            value = inference_event(
                i, "payments", event_time=int(all_times[k]), variant="baseline",
                features={"amount": float(all_amounts[k])}, entity_id=user,
            )  # fmt: skip
            records.append(("payments", CODEC.encode("InferenceEvent", value)))
            i += 1
        expected[user] = {name: f(amounts) for name, f in AGGREGATES.items()}
        expected[user]["last_amount"] = float(amounts[-1])
        expected[user]["_event_time"] = int(newest)
    # events the view must not count: another model, no entity, a failed request, a shadow
    others = [
        inference_event(i + 1, "other-model", features={"amount": 5.0}, entity_id="u0"),
        inference_event(i + 2, "payments", features={"amount": 5.0}, entity_id=None),
        inference_event(
            i + 3,
            "payments",
            features={},
            entity_id="u0",
            outcome="server_error",
            event_time=T_END - 1000,
            variant="baseline",
        ),
        inference_event(
            i + 4,
            "payments",
            features={"amount": 5.0},
            entity_id="u0",
            event_time=T_END - 1000,
            variant="shadow",
        ),
    ]
    records += [(r["model_name"], CODEC.encode("InferenceEvent", r)) for r in others]
    return records, expected


@contextmanager
def _running(loop: ProcessorLoop) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        loop.stop()
        thread.join(30)


def _wait_consumed(loop: ProcessorLoop, total: int, client: redis.Redis, group: str) -> None:
    """Until the loop consumed ``total`` messages and Redis marks them merged (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        marks: dict[bytes, bytes] = client.hgetall(offsets_key(group))  # type: ignore[assignment]
        if loop.stats.messages >= total and sum(int(v) for v in marks.values()) >= total:
            return
        time.sleep(0.1)
    raise AssertionError(f"consumed {loop.stats.messages} of {total}; marks {marks}")


def test_feature_views_in_redis_and_online_equal_direct_aggregates(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    serving_config: Callable[..., ServingConfig],
    tmp_path: Path,
) -> None:
    events_topic, dlq_topic = make_topics(INFERENCE_EVENTS, DEAD_LETTERS)
    views_path = tmp_path / "views.toml"
    views_path.write_text(VIEWS)
    records, expected = _traffic(np.random.default_rng(11))
    records.insert(40, ("payments", b"not avro"))
    produce(kafka_settings, events_topic, records)

    group = "features-a"
    loop = build_features_loop(
        kafka_settings,
        FeatureProcessorSettings(
            group_id=group, poll_timeout_s=0.2, metrics_port=0, commit_interval_s=0
        ),
        RedisSettings(url=SecretStr(redis_url)),
        load_views(views_path),
    )
    with _running(loop):
        _wait_consumed(loop, len(records), redis_client, group)

    # Redis: one hash per view and entity, with the event time it reflects and a TTL
    for user, want in expected.items():
        key = entity_key("user_stats", user)
        raw: dict[bytes, bytes] = redis_client.hgetall(key)  # type: ignore[assignment]
        stored = {k.decode(): v.decode() for k, v in raw.items()}
        assert int(stored[EVENT_TIME]) == want["_event_time"], user
        for name, value in want.items():
            if not name.startswith("_"):
                assert float(stored[name]) == pytest.approx(value, rel=1e-12), (user, name)
        assert BUCKETS in stored
        ttl = redis_client.ttl(key)
        assert 7 * 86400 < ttl <= 7 * 86400 + 3600, ttl
    assert not redis_client.exists(entity_key("user_stats", "None"))

    dlq = assigned_consumer(kafka_settings, dlq_topic, 1, "dlq")
    dead = [m for m in read_all(dlq, 1) if isinstance(m, Message)]
    dlq.close()
    assert [m.value() for m in dead] == [b"not avro"]
    assert (
        dict(dead[0].headers() or [])[REASON]
        and dict(dead[0].headers() or [])[GROUP] == b"features-a"
    )

    # serving: Feast's shape, the same numbers, nulls for an unknown entity
    config = dataclasses.replace(
        serving_config(redis_url=redis_url, publish_events=False),
        features=FeatureViewSettings(views_path=views_path),
    )
    refs = ["user_stats:avg_transaction_amount", "user_stats:transaction_count_7d",
            "user_stats:last_amount"]  # fmt: skip
    users = [*sorted(expected), "nobody"]
    with TestClient(create_app(config)) as client:
        answer = client.post(
            "/features/online",
            json={"entity_rows": [{"user_id": u} for u in users], "feature_refs": refs},
        )
        unknown = client.post(
            "/features/online",
            json={"entity_rows": [{"user_id": "u1"}], "feature_refs": ["user_stats:nope"]},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["metadata"]["feature_names"] == ["user_id", *refs]
    assert body["results"][0]["values"] == users
    for r, ref in enumerate(refs, start=1):
        column = body["results"][r]
        name = ref.split(":")[1]
        for i, user in enumerate(users[:-1]):
            assert column["values"][i] == pytest.approx(expected[user][name], rel=1e-12)
            assert column["statuses"][i] == "PRESENT"
        assert column["values"][-1] is None and column["statuses"][-1] == "NOT_FOUND"
    newest = expected["u0"]["_event_time"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(newest // 1000))
    assert body["results"][1]["event_timestamps"][0] == f"{iso}.{newest % 1000:03d}Z"
    assert unknown.status_code == 400
    assert "user_stats:avg_transaction_amount" in unknown.json()["message"]
