"""Serving on the real broker and a real MLflow store: every request becomes one event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from schemas.breast_cancer import feature_names, load_split
from schemas.exceptions import ModelNotFoundError
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings, KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.settings import ServingSettings
from serving.state import ServingConfig
from tests.integration.conftest import ADMIN_HEADERS
from tests.integration.serving_helpers import events_by_request


def test_predictions_and_mistakes_arrive_as_one_event_each(
    serving_config: Callable[..., ServingConfig],
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
) -> None:
    make_topics(INFERENCE_EVENTS)
    rows = load_split().x_validation[:4].tolist()
    names = feature_names()
    with TestClient(create_app(serving_config())) as client:
        one = client.post("/predict", json={"features": rows[0], "request_id": "ok-1",
                                            "entity_id": "patient-9"})  # fmt: skip
        named = client.post(
            "/predict", json={"features": dict(zip(names, rows[1], strict=True)),
                              "request_id": "ok-2"},
        )  # fmt: skip
        batch = client.post(
            "/predict",
            json={"request_id": "b", "instances": [{"features": r} for r in rows[2:4]]},
        )
        short = client.post("/predict", json={"features": rows[0][:29], "request_id": "bad-1"})
        garbled = client.post(
            "/predict", content=b'{"features": [1,', headers={"X-Request-ID": "bad-2"}
        )
        unknown = client.post(
            "/predict", json={"model_name": "nope", "features": rows[0], "request_id": "bad-3"}
        )
    assert [r.status_code for r in (one, named, batch)] == [200, 200, 200]
    assert [r.status_code for r in (short, garbled, unknown)] == [422, 400, 404]
    ok_ids = {"ok-1", "ok-2", "b:0", "b:1"}
    bad_ids = {"bad-1", "bad-2", "bad-3"}

    events = events_by_request(kafka_settings, ok_ids | bad_ids)

    assert {rid: len(evs) for rid, evs in events.items()} == dict.fromkeys(ok_ids | bad_ids, 1)
    first = events["ok-1"][0]
    answer = one.json()
    assert first["_key"] == "breast-cancer-classifier"
    assert first["features"] == dict(zip(names, rows[0], strict=True))
    assert first["prediction"] == float(answer["prediction"])
    assert first["probabilities"][str(answer["prediction"])] == pytest.approx(answer["probability"])
    assert (first["outcome"], first["variant"], first["entity_id"]) == ("ok", "baseline",
                                                                        "patient-9")  # fmt: skip
    assert first["model_version"] == answer["model_version"] and first["latency_ms"] > 0
    assert first["source"] == "driftline-serving"
    assert events["ok-2"][0]["features"] == dict(zip(names, rows[1], strict=True))
    for rid, code in (("bad-1", "wrong_feature_count"), ("bad-2", "malformed_json"),
                      ("bad-3", "unknown_model")):  # fmt: skip
        event = events[rid][0]
        assert (event["outcome"], event["error_type"]) == ("client_error", code), rid
        assert event["prediction"] is None and event["features"] == {}
    assert events["bad-3"][0]["model_name"] == "nope"


def test_metrics_and_readiness_follow_the_broker(
    serving_config: Callable[..., ServingConfig], make_topics: Callable[..., list[str]]
) -> None:
    make_topics(INFERENCE_EVENTS)
    row = load_split().x_validation[0].tolist()
    with TestClient(create_app(serving_config())) as client:
        state = client.app.state.serving  # type: ignore[attr-defined]
        for i in range(20):
            assert client.post("/predict", json={"features": row, "request_id": f"m{i}"}).is_success
        assert state.publisher.close(30) == 0  # everything acknowledged, nothing spooled
        assert client.get("/ready").json()["broker"] == "up"
        text = client.get("/metrics").text
    assert "serving_app_events_published_total 20.0" in text
    assert "serving_app_events_spooled_total 0.0" in text


def test_admin_reload_picks_up_a_new_champion(
    serving_config: Callable[..., ServingConfig],
    make_topics: Callable[..., list[str]],
    serving_store: ModelStore,
) -> None:
    from retrain.training import train_and_register

    make_topics(INFERENCE_EVENTS)
    row = load_split().x_validation[0].tolist()
    with TestClient(create_app(serving_config())) as client:
        before = client.post("/predict", json={"features": row}).json()["model_version"]
        assert client.post("/admin/reload").status_code == 401
        newer = train_and_register(serving_store, parameters={"C": 0.5})
        reloaded = client.post("/admin/reload", headers=ADMIN_HEADERS).json()
        after = client.post("/predict", json={"features": row}).json()["model_version"]
    assert (reloaded["previous_version"], reloaded["version"]) == (before, newer.version)
    assert after == newer.version != before


def test_serving_never_trains_and_names_the_fix_when_no_champion_exists(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    """Training belongs to the launcher (``driftline train``, ``driftline up``)."""
    make_topics(INFERENCE_EVENTS)
    store = ModelStore.embedded(tmp_path / "fresh")
    config = ServingConfig(
        serving=ServingSettings(), kafka=kafka_settings,
        data=DataSettings(data_dir=tmp_path), store=store, redis=None,
    )  # fmt: skip
    with pytest.raises(ModelNotFoundError, match="driftline train"), TestClient(create_app(config)):
        pass
    assert store.registered_models() == []
