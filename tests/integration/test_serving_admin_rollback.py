"""POST /admin/rollback: token required; traffic back on the champion; recorded in Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis
from fastapi.testclient import TestClient

from retrain.training import train_and_register
from schemas.breast_cancer import load_split
from schemas.codec import SingleObjectCodec
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, MODEL_DEPLOYMENTS
from serving.app import create_app
from serving.settings import DEFAULT_MODEL_NAME as MODEL
from serving.state import ServingConfig
from tests.integration.conftest import (
    ADMIN_HEADERS,
    assigned_consumer,
    read_all,
)


def test_rollback_route_sends_traffic_to_the_champion_and_records_it(
    serving_config: Callable[..., ServingConfig],
    serving_store: ModelStore,
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    _, deployments = make_topics(INFERENCE_EVENTS, MODEL_DEPLOYMENTS)
    champion = serving_store.alias_version(MODEL, "champion")
    canary = train_and_register(serving_store, alias="rollback-candidate").version
    rows = [r.tolist() for r in load_split().x_validation[:40]]
    config = serving_config(redis_url=redis_url, rollout_poll_s=0.1)
    with TestClient(create_app(config)) as client:
        assert client.post("/admin/rollback").status_code == 401
        assert (
            client.post("/admin/rollback", headers={"Authorization": "Bearer nope"}).status_code
            == 403
        )
        client.post("/admin/canary", json={"share": 1.0, "version": canary}, headers=ADMIN_HEADERS)
        before = {client.post("/predict", json={"features": r}).json()["variant"] for r in rows}
        answer = client.post(
            "/admin/rollback", json={"reason": "canary errors"}, headers=ADMIN_HEADERS
        )
        assert answer.status_code == 200, answer.text
        after = [client.post("/predict", json={"features": r}).json() for r in rows]

    assert before == {"canary"}
    assert {(a["variant"], a["model_version"]) for a in after} == {("baseline", champion)}
    body = answer.json()
    assert (body["canary_version_before"], body["canary_share_before"]) == (canary, 1.0)
    state = RolloutStore(redis_client).read(MODEL)
    assert state is not None and (state.canary_version, state.canary_share) == (None, 0.0)

    consumer = assigned_consumer(kafka_settings, deployments, 1, f"rb-{uuid.uuid4().hex[:6]}")
    (message,) = read_all(consumer, 1)
    consumer.close()
    event = SingleObjectCodec().decode(message.value()).value  # type: ignore[attr-defined]
    assert (event["action"], event["reason"]) == ("rolled_back", "canary errors")
    assert event["deployment_id"] == body["deployment_id"]
