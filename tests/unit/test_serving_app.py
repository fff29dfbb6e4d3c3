"""The serving app without servers: admin guard, routing, answers and metrics.

The model is fitted here (milliseconds) and put in place directly; nothing is mocked.
MLflow loading, publishing and the broker are covered by the integration tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retrain.drift_fixtures import SIZE_FEATURES
from retrain.training import build_pipeline
from schemas.breast_cancer import load_split
from schemas.settings import DataSettings
from serving.app import create_app
from serving.auth import is_admin_path, token_matches
from serving.predictor import LoadedModel
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig

REPO = Path(__file__).resolve().parents[2]
TOKEN = "adm-0123456789abcdef"
OTHER = "second-token"


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    split = load_split()
    estimator = build_pipeline().fit(split.x_train, split.y_train)
    return LoadedModel("breast-cancer-classifier", "7", "champion", split.features, estimator)


@pytest.fixture
def client(model: LoadedModel, tmp_path: Path) -> Iterator[TestClient]:
    config = ServingConfig(
        serving=ServingSettings(publish_events=False),
        admin=AdminSettings(tokens=SecretStr(f"{TOKEN}, {OTHER}")),
        data=DataSettings(data_dir=tmp_path),
        redis=None,
    )
    app = create_app(config)
    app.state.serving.model = model  # no lifespan: no MLflow, no broker
    yield TestClient(app)


ADMIN_PATHS = ["/admin", "/admin/", "/admin/reload", "/admin/does-not-exist", "/admin//reload"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_paths_need_a_token_before_routing(client: TestClient, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        missing = client.request(method, path)
        assert missing.status_code == 401, (method, path)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = client.request(method, path, headers={"Authorization": "Bearer not-it"})
        assert wrong.status_code == 403, (method, path)
        basic = client.request(method, path, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401


def test_a_right_token_reaches_the_routes(client: TestClient) -> None:
    for token in (TOKEN, OTHER):
        answer = client.get("/admin", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "POST /admin/reload" in answer.json()["operations"]
    unknown = client.get("/admin/nothing", headers={"Authorization": f"Bearer {TOKEN}"})
    assert unknown.status_code == 404  # routing happens only after the guard


def test_tokens_never_appear_in_logs_or_answers(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN}", f"Basic {TOKEN}", TOKEN):
        answer = client.post("/admin/nothing", headers={"Authorization": header})
        seen.append(answer.text + str(dict(answer.headers)))
    assert all(TOKEN not in text for text in seen)
    assert TOKEN not in caplog.text and OTHER not in caplog.text


def test_no_configured_tokens_refuses_everyone(model: LoadedModel, tmp_path: Path) -> None:
    config = ServingConfig(
        serving=ServingSettings(publish_events=False),
        admin=AdminSettings(),
        data=DataSettings(data_dir=tmp_path),
        redis=None,
    )
    app = create_app(config)
    app.state.serving.model = model
    client = TestClient(app)
    assert client.get("/admin", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/admin", headers={"Authorization": "Bearer anything"}).status_code == 403


def test_guard_helpers() -> None:
    assert all(is_admin_path(p) for p in [*ADMIN_PATHS, "//admin", "///admin/x"])
    assert not any(is_admin_path(p) for p in ("/administrator", "/predict", "/", "/adminx/y"))
    assert token_matches(b"b", [b"a", b"b"]) and not token_matches(b"c", [b"a", b"b"])
    assert not token_matches(b"", [])


def test_public_routes_need_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["broker"] == "disabled"
    models = client.get("/models").json()["models"]
    assert [(m["name"], m["version"], len(m["features"])) for m in models] == [
        ("breast-cancer-classifier", "7", 30)
    ]
    assert client.get("/openapi.json").status_code == 200


def test_predict_answers_with_the_baseline_variant(client: TestClient, model: LoadedModel) -> None:
    split = load_split()
    row = split.x_validation[0].tolist()
    one = client.post("/predict", json={"features": row, "request_id": "q-1"}).json()
    assert one["request_id"] == "q-1" and one["variant"] == "baseline"
    assert (one["model_name"], one["model_version"]) == ("breast-cancer-classifier", "7")
    expected = model.estimator.predict_proba([row])[0]
    assert one["prediction"] == int(expected.argmax())
    assert one["probability"] == pytest.approx(expected.max())
    rows = split.x_validation[:5].tolist()
    batch = client.post("/predict", json={"instances": [{"features": r} for r in rows]}).json()
    assert [p["prediction"] for p in batch["predictions"]] == list(
        model.estimator.predict_proba(rows).argmax(axis=1)
    )


def test_client_mistakes_are_4xx_json_never_500(client: TestClient) -> None:
    cases = {
        b'{"features": [1, 2': 400,
        b'{"features": [1, 2]}': 422,
        b'{"model_name": "x", "features": []}': 404,
        b'{"features": ' + b"[" + b"1," * 29 + b"NaN]}": 422,
        b"[]": 422,
        b"": 400,
        b"\x00\xff": 400,
    }
    for body, status in cases.items():
        answer = client.post("/predict", content=body)
        assert answer.status_code == status, body
        assert answer.json()["error"] and answer.json()["message"] and answer.json()["request_id"]
    too_big = client.post("/predict", content=b" " * 1_100_000)
    assert too_big.status_code == 413 and too_big.json()["error"] == "body_too_large"


def test_metrics_count_requests_by_status(client: TestClient) -> None:
    row = load_split().x_validation[0].tolist()
    client.post("/predict", json={"features": row})
    client.post("/predict", json={"features": row[:3]})
    text = client.get("/metrics").text
    assert (
        'serving_app_request_latency_seconds_count{model_name="breast-cancer-classifier",'
        'model_variant="baseline",status="200"} 1.0' in text
    )
    assert (
        'serving_app_errors_total{error_type="wrong_feature_count",kind="client_error",'
        'model_name="breast-cancer-classifier"} 1.0' in text
    )


def test_admin_canary_needs_redis_and_checks_its_body(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad = client.post("/admin/canary", json={"share": 1.5}, headers=headers)
    assert bad.status_code == 422
    assert (bad.json()["error"], bad.json()["location"]) == ("invalid_request", "body.share")
    for route in ("/admin/canary", "/admin/rollback", "/admin/promote"):  # as /predict says
        json_headers = {**headers, "Content-Type": "application/json"}
        broken = client.post(route, content=b'{"share": 0.2,', headers=json_headers)
        assert broken.status_code == 400, (route, broken.text)
        assert broken.json()["error"] == "malformed_json" and "JSON" in broken.json()["message"]
    no_redis = client.post("/admin/canary", json={"share": 0.2, "version": "1"}, headers=headers)
    assert no_redis.status_code == 503 and "Redis" in no_redis.json()["message"]
    live = client.get("/admin/canary", headers=headers).json()
    assert (live["canary_version"], live["canary_share"]) == (None, 0.0)


def _rows(frame: pd.DataFrame) -> list[dict[str, float | None]]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_drift_detect_flags_exactly_the_shifted_features(client: TestClient) -> None:
    """The committed fixture's documented shift is what the stream statistics find."""
    current = pd.read_csv(REPO / "data" / "sample" / "drift_current.csv")
    answer = client.post("/drift/detect", json={"current_data": _rows(current)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["is_drift"] and body["reference_data_id"] == "reference"
    flagged = {f["feature"] for f in body["features"] if f["is_drift"]}
    assert flagged == {*SIZE_FEATURES, "mean texture"}
    assert body["unknown_features"] == [] and body["missing_features"] == []
    assert body["result"]["data"]["drift_score"] == body["drift_score"]


def test_drift_detect_on_unshifted_rows_and_partial_columns(client: TestClient) -> None:
    split = load_split()
    rows = [dict(zip(split.features, r, strict=True)) for r in split.x_validation.tolist()]
    calm = client.post("/drift/detect", json={"current_data": rows}).json()
    assert not calm["is_drift"] and calm["drift_score"] == 0.0
    partial = [{"mean radius": r["mean radius"], "colour": 1.0, "target": 1.0} for r in rows]
    body = client.post("/drift/detect", json={"current_data": partial}).json()
    assert body["unknown_features"] == ["colour"]  # target is the label, not a feature
    assert len(body["missing_features"]) == 29 and "mean radius" not in body["missing_features"]


def test_drift_detect_refuses_unknown_ids_and_bad_rows(client: TestClient) -> None:
    rows = [{"mean radius": 1.0}]
    unknown = client.post("/drift/detect", json={"reference_data_id": "x", "current_data": rows})
    assert unknown.status_code == 404
    assert "known: ['reference', 'training', 'validation']" in unknown.json()["message"]
    nothing_shared = client.post("/drift/detect", json={"current_data": [{"zzz": 1.0}]})
    assert nothing_shared.status_code == 422
    text = client.post("/drift/detect", json={"current_data": [{"mean radius": "big"}]})
    assert text.status_code == 422 and text.json()["location"].startswith("body.current_data.0")
    other = client.post("/drift/detect", json={"model_name": "m", "current_data": rows})
    assert other.status_code == 404
