"""Canary routing from live rollout state in Redis, on the real broker and MLflow store."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi.testclient import TestClient

from retrain.training import train_and_register
from schemas.breast_cancer import load_split
from schemas.model_registry import ModelStore
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.rollout import choose_variant
from serving.state import ServingConfig
from tests.integration.conftest import ADMIN_HEADERS
from tests.integration.serving_helpers import events_by_request


def test_canary_share_routes_sticky_by_entity_and_every_replica_agrees(
    serving_config: Callable[..., ServingConfig],
    serving_store: ModelStore,
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    make_topics(INFERENCE_EVENTS)
    canary_version = train_and_register(serving_store, alias="canary-candidate").version
    rows = load_split().x_validation[:40].tolist()
    config = serving_config(redis_url=redis_url, rollout_poll_s=0.1)
    with TestClient(create_app(config)) as one, TestClient(create_app(config)) as two:
        champion = one.get("/models").json()["models"][0]["version"]
        assert (
            one.post("/admin/canary", json={"share": 0.5, "version": canary_version}).status_code
            == 401
        )
        missing = one.post(
            "/admin/canary", json={"share": 0.5, "version": "999"}, headers=ADMIN_HEADERS
        )
        assert missing.status_code == 404
        answer = one.post(
            "/admin/canary", json={"share": 0.5, "version": canary_version}, headers=ADMIN_HEADERS
        )
        assert answer.json()["canary_share"] == 0.5 and answer.json()["canary_version"] == (
            canary_version
        )

        def replica_two_agrees() -> bool:
            share: float = two.get("/admin/canary", headers=ADMIN_HEADERS).json()["canary_share"]
            return share == 0.5

        _wait(replica_two_agrees)
        answers = {}
        for i, row in enumerate(rows):
            entity = f"patient-{i}"
            client = one if i % 2 else two  # both replicas serve the same entities
            body = {"features": row, "entity_id": entity, "request_id": f"c-{i}"}
            answers[entity] = client.post("/predict", json=body).json()
            again = (two if i % 2 else one).post("/predict", json=body | {"request_id": f"d-{i}"})
            assert again.json()["variant"] == answers[entity]["variant"]  # sticky, both replicas
        models = one.get("/models").json()["models"][0]["rollout"]

        back = one.post("/admin/canary", json={"share": 0.0}, headers=ADMIN_HEADERS).json()
        after = one.post("/predict", json={"features": rows[0], "entity_id": "patient-1"}).json()

    expected = {e: choose_variant(e, 0.5) for e in answers}
    assert {e: a["variant"] for e, a in answers.items()} == expected
    assert set(expected.values()) == {"baseline", "canary"}
    for entity, answer in answers.items():
        wanted = canary_version if expected[entity] == "canary" else champion
        assert answer["model_version"] == wanted
    assert (models["canary_version"], models["canary_share"]) == (canary_version, 0.5)
    assert back["canary_share"] == 0.0 and after["variant"] == "baseline"
    stored = redis_client.hget(f"driftline:rollout:{answers['patient-0']['model_name']}",
                               "canary_version")  # fmt: skip
    assert stored == canary_version.encode()

    events = events_by_request(kafka_settings, {f"c-{i}" for i in range(len(rows))})
    for i in range(len(rows)):
        event = events[f"c-{i}"][0]
        assert event["variant"] == expected[f"patient-{i}"]
        assert event["model_version"] == answers[f"patient-{i}"]["model_version"]


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll; the bound only stops a broken run (the assertion decides)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()
