"""Promote: the canary becomes the champion on every replica and the change is recorded."""

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
from tests.integration.test_serving_canary import _wait


def test_promote_moves_the_champion_clears_the_canary_and_records_it(
    serving_config: Callable[..., ServingConfig],
    serving_store: ModelStore,
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    _, deployments = make_topics(INFERENCE_EVENTS, MODEL_DEPLOYMENTS)
    previous = serving_store.alias_version(MODEL, "champion")
    assert previous is not None
    canary = train_and_register(serving_store, alias="promote-candidate").version
    row = load_split().x_validation[0].tolist()
    config = serving_config(redis_url=redis_url, rollout_poll_s=0.1)
    try:
        with TestClient(create_app(config)) as one, TestClient(create_app(config)) as two:
            assert one.post("/admin/promote").status_code == 401
            nothing = one.post("/admin/promote", headers=ADMIN_HEADERS)
            assert nothing.status_code == 409 and "no canary" in nothing.json()["message"]
            one.post("/admin/canary", json={"share": 0.2, "version": canary}, headers=ADMIN_HEADERS)
            answer = one.post("/admin/promote", json={"reason": "canary healthy"},
                              headers=ADMIN_HEADERS)  # fmt: skip
            assert answer.status_code == 200, answer.text
            served_one = one.post("/predict", json={"features": row}).json()

            def replica_two_reloaded() -> bool:
                version: str = two.get("/models").json()["models"][0]["version"]
                return version == canary

            _wait(replica_two_reloaded)
            served_two = two.post("/predict", json={"features": row}).json()
            canary_after = one.get("/admin/canary", headers=ADMIN_HEADERS).json()
    finally:
        serving_store.set_alias(MODEL, "champion", previous)  # the session store's champion

    body = answer.json()
    assert (body["previous_champion_version"], body["champion_version"]) == (previous, canary)
    for served in (served_one, served_two):
        assert (served["model_version"], served["variant"]) == (canary, "baseline")
    assert canary_after["canary_version"] is None and canary_after["canary_share"] == 0.0
    state = RolloutStore(redis_client).read(MODEL)
    assert state is not None
    assert (state.canary_version, state.canary_share, state.champion_version) == (
        None, 0.0, canary,
    )  # fmt: skip

    consumer = assigned_consumer(kafka_settings, deployments, 1, f"pr-{uuid.uuid4().hex[:6]}")
    (message,) = read_all(consumer, 1)
    consumer.close()
    event = SingleObjectCodec().decode(message.value()).value  # type: ignore[attr-defined]
    assert message.key() == MODEL.encode()  # type: ignore[attr-defined]
    assert (event["action"], event["reason"], event["champion_version"]) == (
        "promoted", "canary healthy", canary,
    )  # fmt: skip
    assert event["deployment_id"] == body["deployment_id"]
    assert event["evidence"]["canary_share_before"] == 0.2
