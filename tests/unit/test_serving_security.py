"""Every route of the serving app, found from the app itself: auth and body limits.

The routes are enumerated from ``app.routes``, not listed by hand, so a route added
later is covered the day it appears: unless it is named in ``PUBLIC`` (a conscious,
reviewed choice), it must refuse a missing token (401) and a wrong one (403). And every
route refuses an oversized body early with a 413 JSON answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retrain.training import build_pipeline
from schemas.breast_cancer import load_split
from schemas.settings import DataSettings
from serving.app import create_app
from serving.predictor import LoadedModel
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig

TOKEN = "sec-token-0123456789"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 4096
DATASET_MAX = 8192

#: (method, path) that answer without a token. Adding a route here is a security decision.
PUBLIC = {
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/models"),
    ("POST", "/predict"), ("POST", "/drift/detect"), ("GET", "/references"),
    ("GET", "/models/train/{run_id}"),
    # read-only canary verdicts for Argo Rollouts / Flagger, by decision (serving/api/analysis.py)
    ("GET", "/analysis/{model}/canary"), ("GET", "/analysis/{model}/canary/gate"),
    ("POST", "/analysis/{model}/canary/gate"), ("GET", "/analysis/{model}/shadow"),
    # online feature values are read-only, like /predict; a job's progress is read by its
    # random id (triggering one needs the token) (docs/features.md)
    ("POST", "/features/online"), ("GET", "/pipelines/{job_id}"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"), ("HEAD", "/openapi.json"), ("HEAD", "/docs"),
    ("HEAD", "/docs/oauth2-redirect"), ("HEAD", "/redoc"),
}  # fmt: skip


def _app(tmp_path: Path) -> FastAPI:
    split = load_split()
    estimator = build_pipeline().fit(split.x_train, split.y_train)
    config = ServingConfig(
        serving=ServingSettings(
            publish_events=False, max_body_bytes=MAX_BODY, dataset_max_bytes=DATASET_MAX
        ),
        admin=AdminSettings(tokens=SecretStr(TOKEN)),
        data=DataSettings(data_dir=tmp_path),
        redis=None,
    )
    app = create_app(config)
    app.state.serving.model = LoadedModel(  # no lifespan: no MLflow, no broker
        "breast-cancer-classifier", "7", "champion", split.features, estimator
    )
    return app


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app routes."""
    found: list[tuple[str, str]] = []
    # FastAPI keeps included routers as branches of app.routes; iter_route_contexts is
    # its own flattening (what it builds the OpenAPI document from).
    for route in iter_route_contexts(app.routes):
        if route.path is not None:
            found += [(method, route.path) for method in sorted(route.methods or ())]
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0" * 32, path)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _app(tmp_path_factory.mktemp("security"))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield TestClient(app)


def test_the_enumeration_finds_every_kind_of_route(app: FastAPI) -> None:
    routes = set(_routes(app))
    assert ("POST", "/admin/promote") in routes and ("POST", "/models/train") in routes
    assert ("POST", "/references") in routes and ("DELETE", "/admin/shadow") in routes
    assert len(routes - PUBLIC) >= 10


def test_every_route_not_declared_public_needs_the_admin_token(
    app: FastAPI, client: TestClient
) -> None:
    guarded = sorted(set(_routes(app)) - PUBLIC)
    wrong_answers: list[str] = []
    for method, template in guarded:
        path = _concrete(template)
        missing = client.request(method, path, json={})
        wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        basic = client.request(method, path, json={}, headers={"Authorization": f"Basic {TOKEN}"})
        got = (missing.status_code, wrong.status_code, basic.status_code)
        if got != (401, 403, 401) or missing.json()["error"] != "unauthorized":
            wrong_answers.append(f"{method} {template}: {got}")
        elif not missing.headers.get("www-authenticate", "").startswith("Bearer"):
            wrong_answers.append(f"{method} {template}: 401 without WWW-Authenticate")
    assert not wrong_answers, f"admin routes answering without a valid token: {wrong_answers}"


def test_public_routes_are_still_routed(app: FastAPI) -> None:
    """PUBLIC names only routes that exist: a stale entry would hide nothing, but mislead."""
    docs = {(m, p) for m, p in PUBLIC if p.startswith(("/docs", "/redoc", "/openapi"))}
    assert PUBLIC - docs <= set(_routes(app))


def _oversized_calls(app: FastAPI) -> Iterator[tuple[str, str, int]]:
    """(method, path, limit) of every route that takes a body (and GET /admin too)."""
    for method, template in _routes(app):
        if method in ("POST", "PUT", "PATCH", "DELETE") or template == "/admin":
            big = template in ("/references", "/drift/detect")
            yield method, _concrete(template), DATASET_MAX if big else MAX_BODY


def test_every_route_refuses_an_oversized_body_with_413_json(
    app: FastAPI, client: TestClient
) -> None:
    calls = list(_oversized_calls(app))
    assert len(calls) >= 10
    for method, path, limit in calls:
        body = b'{"pad": "' + b"x" * limit + b'"}'
        answer = client.request(method, path, content=body, headers=GOOD)
        assert answer.status_code == 413, (method, path, answer.text)
        assert answer.json()["error"] == "body_too_large", (method, path)


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 KiB offered, no Content-Length; the limit is 4 KiB
            yield b" " * 1024

    answer = client.post("/admin/canary", content=chunks(), headers=GOOD)
    assert answer.status_code == 413 and answer.json()["error"] == "body_too_large"
    assert "4096" in answer.json()["message"]


def test_bodies_within_the_limit_reach_the_route(client: TestClient) -> None:
    rows = [{"mean radius": 14.0 + i / 10} for i in range(60)]  # ~1.6 KiB: under both limits
    answer = client.post("/drift/detect", json={"current_data": rows})
    assert answer.status_code == 200, answer.text
    # over the default limit, under the dataset limit: /drift/detect takes it
    rows = [{"mean radius": 14.0 + i / 1000} for i in range(250)]
    answer = client.post("/drift/detect", json={"current_data": rows})
    assert answer.status_code == 200, answer.text


def test_no_token_is_401_before_the_size_is_looked_at(client: TestClient) -> None:
    answer = client.post("/admin/canary", content=b"x" * (MAX_BODY * 4))
    assert answer.status_code == 401
