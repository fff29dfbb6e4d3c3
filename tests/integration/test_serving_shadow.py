"""The shadow variant: a copy of the traffic, published with variant=shadow, never returned."""

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
from serving.state import ServingConfig
from tests.integration.conftest import ADMIN_HEADERS
from tests.integration.serving_helpers import events_by_request


def test_shadow_gets_a_copy_published_and_the_champion_answers(
    serving_config: Callable[..., ServingConfig],
    serving_store: ModelStore,
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
    redis_url: str,
    redis_client: redis.Redis,  # empties Redis after the test
) -> None:
    make_topics(INFERENCE_EVENTS)
    shadow_version = train_and_register(
        serving_store, alias="shadow-candidate", parameters={"C": 0.01}
    ).version
    rows = load_split().x_validation[:5].tolist()
    config = serving_config(redis_url=redis_url, rollout_poll_s=0.1)
    with TestClient(create_app(config)) as client:
        champion = client.get("/models").json()["models"][0]["version"]
        assert client.post("/admin/shadow", json={"version": shadow_version}).status_code == 401
        missing = client.post("/admin/shadow", json={"version": "999"}, headers=ADMIN_HEADERS)
        assert missing.status_code == 404 and "999" in missing.json()["message"]
        set_ = client.post("/admin/shadow", json={"version": shadow_version}, headers=ADMIN_HEADERS)
        assert set_.status_code == 200 and set_.json()["shadow_version"] == shadow_version
        answers = [
            client.post("/predict", json={"features": row, "request_id": f"s-{i}"}).json()
            for i, row in enumerate(rows)
        ]
        batch = client.post(
            "/predict", json={"request_id": "sb", "instances": [{"features": rows[0]}]}
        ).json()
        wanted = {f"s-{i}" for i in range(len(rows))} | {"sb:0"}
        events = events_by_request(kafka_settings, wanted, per_request=2)
        shadowed = client.get("/metrics").text
        cleared = client.delete("/admin/shadow", headers=ADMIN_HEADERS).json()
        after = client.post("/predict", json={"features": rows[0], "request_id": "s-after"})
        state = client.app.state.serving  # type: ignore[attr-defined]
        queued_after = state.shadow_runner.pending()
        metrics = client.get("/metrics").text

    assert cleared["shadow_version"] is None and after.status_code == 200
    assert state.shadow is None and queued_after == 0
    assert "serving_app_shadow_predictions_total 6.0" in shadowed
    for answer in answers:
        assert (answer["variant"], answer["model_version"]) == ("baseline", champion)
        assert set(answer) == {"request_id", "prediction", "probability", "model_name",
                               "model_version", "variant"}  # fmt: skip
    assert [p["variant"] for p in batch["predictions"]] == ["baseline"]
    assert "serving_app_shadow_predictions_total 6.0" in metrics  # none for s-after
    assert "serving_app_shadow_dropped_total 0.0" in metrics
    for request_id in wanted:
        by_variant = {e["variant"]: e for e in events[request_id]}
        assert len(events[request_id]) == 2, events[request_id]
        assert by_variant["baseline"]["model_version"] == champion
        shadow = by_variant["shadow"]
        assert shadow["model_version"] == shadow_version and shadow["outcome"] == "ok"
        assert shadow["features"] == by_variant["baseline"]["features"]
        assert shadow["prediction"] in (0.0, 1.0)
