"""Shadow mode end to end on the embedded broker, a real redis-server and a sqlite MLflow:
a retrained candidate becomes the shadow, serving mirrors traffic to it, the shadow job
joins both answers by request id and publishes a ShadowComparison, and a command
promotes the shadow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr

from retrain.handler import RetrainHandler
from retrain.job import RetrainJob
from retrain.settings import RetrainSettings
from retrain.training import train_and_register
from schemas.breast_cancer import load_split
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.retrain_requests import retrain_request
from schemas.rollout_state import RolloutStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS, MODEL_DEPLOYMENTS, SHADOW_COMPARISONS
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig
from stream.settings import ShadowSettings
from stream.shadow_app import ShadowLoop
from tests.integration.retrain_helpers import WorkerThread, records_on, wait_for

pytestmark = pytest.mark.integration

TOKEN = "shadow-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def test_a_candidate_rolled_out_as_shadow_is_compared_and_promoted_by_command(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    make_topics(INFERENCE_EVENTS, SHADOW_COMPARISONS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    store = ModelStore.embedded(tmp_path / "mlflow")
    name = f"shadow-{uuid.uuid4().hex[:6]}"
    champion = train_and_register(store, name).version
    rollout = RolloutStore(redis_client)

    # 1. DRIFTLINE_RETRAIN_ROLLOUT=shadow: a passing candidate becomes the shadow, not a canary
    settings = RetrainSettings(rollout="shadow", window_s=0.0, lock_wait_s=10.0)
    job = RetrainJob(settings, kafka_settings, store, rollout, SingleObjectCodec())
    outcome = RetrainHandler(settings, redis_client, store, job).handle(
        retrain_request(name, "manual", "test", urgent=True, parameters={"C": 0.5})
    )
    assert outcome.status == "challenger" and outcome.run_id is not None, outcome.detail
    shadow = outcome.version
    assert shadow is not None and shadow != champion
    tags = store.activate().get_run(outcome.run_id).data.tags
    assert tags["shadow"] == "true" and tags["driftline.status"] == "challenger"
    state = rollout.read(name)
    assert state is not None and state.shadow_version == shadow and state.canary_version is None
    assert store.alias_version(name, "challenger") == shadow
    assert store.alias_version(name, "champion") == champion

    # 2. serving mirrors traffic to it; the shadow job pairs the answers by request id
    config = ServingConfig(
        serving=ServingSettings(model_name=name, rollout_poll_s=0.1),
        admin=AdminSettings(tokens=SecretStr(TOKEN)),
        kafka=kafka_settings,
        data=DataSettings(data_dir=tmp_path / "data"),
        store=store,
        redis=RedisSettings(url=SecretStr(redis_url)),
    )
    rows = load_split().x_validation[:30].tolist()
    windows: list[dict[str, Any]] = []
    loop = ShadowLoop(
        kafka_settings,
        ShadowSettings(
            group_id=f"shadow-{uuid.uuid4().hex[:6]}", window_s=1.0, join_window_s=0.5,
            poll_timeout_s=0.2, commit_interval_s=0.0, metrics_port=0,
        ),
        on_window=windows.append,
    )  # fmt: skip
    with TestClient(create_app(config)) as client, WorkerThread(loop) as running:
        assert wait_for(
            lambda: client.get("/admin/shadow", headers=HEADERS).json()["shadow_version"] == shadow
        )
        for i, row in enumerate(rows):
            answer = client.post("/predict", json={"features": row, "request_id": f"r{i}"})
            assert answer.status_code == 200 and answer.json()["model_version"] == champion
        time.sleep(2.0)  # the next request's event time closes the first requests' windows
        bad = Producer(producer_config(kafka_settings))
        bad.produce(INFERENCE_EVENTS.prefixed(kafka_settings.topic_prefix).name, b"not avro")
        assert bad.flush(10) == 0
        client.post("/predict", json={"features": rows[0], "request_id": "closer"})

        def all_paired() -> bool:
            return sum(w["pair_count"] for w in windows) >= len(rows) or running.error is not None

        assert wait_for(all_paired)
    assert running.error is None
    assert sum(w["pair_count"] for w in windows) == len(rows)
    assert all(w["unmatched_champion_count"] == 0 for w in windows)
    paired = [w for w in windows if w["pair_count"]]
    assert {(w["champion_version"], w["shadow_version"]) for w in paired} == {(champion, shadow)}
    # a candidate trained on the same data (C=0.5 vs 1.0) almost always agrees
    assert all(w["agreement_rate"] >= 0.9 for w in paired)
    assert all(0.0 <= w["prediction_shift"] <= 0.1 for w in paired)
    assert all(w["shadow_latency_p99_ms"] > 0 for w in paired)
    published = records_on(kafka_settings, SHADOW_COMPARISONS, len(windows))
    assert [r["window_start"] for r in published] == [w["window_start"] for w in windows]
    last = windows[-1]
    assert REGISTRY.get_sample_value("driftline_shadow_pairs", {"model": name}) == float(
        last["pair_count"]
    )
    (dead,) = records_on_raw(kafka_settings)
    assert dead == b"not avro"

    # 3. promotion by command: the shadow becomes the champion
    with TestClient(create_app(config)) as client:
        refused = client.post("/admin/promote", json={"variant": "shadow"})
        assert refused.status_code == 401
        promoted = client.post(
            "/admin/promote", json={"variant": "shadow", "reason": "agrees"}, headers=HEADERS
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["champion_version"] == shadow
        again = client.post("/admin/promote", json={"variant": "shadow"}, headers=HEADERS)
        assert again.status_code == 409 and "no shadow" in again.json()["message"]
        bad_variant = client.post("/admin/promote", json={"variant": "other"}, headers=HEADERS)
        assert bad_variant.status_code == 422
    assert store.alias_version(name, "champion") == shadow
    after = rollout.read(name)
    assert after is not None and after.shadow_version is None and after.champion_version == shadow
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "promoted" and event["evidence"]["from_shadow"] == 1.0
    assert event["champion_version"] == shadow and event["shadow_version"] is None


def records_on_raw(kafka: KafkaSettings) -> list[bytes]:
    """The raw values on this test's dead-letter topic."""
    from tests.integration.conftest import assigned_consumer, read_all

    topic = DEAD_LETTERS.prefixed(kafka.topic_prefix).name
    consumer = assigned_consumer(kafka, topic, 1, f"t-{uuid.uuid4().hex[:8]}")
    try:
        return [m.value() for m in read_all(consumer, 1, timeout_s=30)]  # type: ignore[attr-defined]
    finally:
        consumer.close()
