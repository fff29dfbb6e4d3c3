"""Secrets never leave serving: not in its log, not in /metrics, not in any answer.

A real ``python -m serving`` runs with every secret it can be given set (admin tokens,
a Redis URL with a password, a Kafka SASL password), on the embedded broker and the
session's MLflow store. Its Redis is unreachable on purpose, so the error paths that
describe a failing dependency run too. Then everything captured is grepped.

The MLflow URL's password is checked in-process: serving must load its model from the
sqlite store at start, so a password-carrying MLflow URL (unreachable, so the failure
messages are produced) is given to an app whose model is put in place directly.
"""

from __future__ import annotations

import logging
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from driftline.ports import LOOPBACK, free_port
from driftline.processes import ManagedProcess
from retrain.training import build_pipeline
from schemas.breast_cancer import load_split
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings, KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.predictor import LoadedModel
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "adm-tok-7f3a9c1e5b2d"
SECOND_TOKEN = "adm-tok-second-44e1"
REDIS_PASSWORD = "redis-pw-9d8c7b6a"
KAFKA_PASSWORD = "kafka-pw-1a2b3c4d"
MLFLOW_PASSWORD = "mlflow-pw-5e6f7a8b"


def _calls() -> list[tuple[str, str, dict[str, object]]]:
    """Requests that touch every route kind, good and bad, with the token right and wrong."""
    row = load_split().x_validation[0].tolist()
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return [
        ("POST", "/predict", {"json": {"features": row, "request_id": "ok-1"}}),
        ("POST", "/predict", {"json": {"features": row[:3]}}),
        ("POST", "/predict", {"content": b"{not json"}),
        ("POST", "/predict", {"content": b"x" * 2_000_000}),
        ("POST", "/drift/detect", {"json": {"current_data": [{"mean radius": 1.0}]}}),
        ("POST", "/drift/detect", {"json": {"reference_data_id": "nope", "current_data": [{}]}}),
        ("GET", "/admin", {}),
        ("GET", "/admin", {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}x"}}),
        ("GET", "/admin", {"headers": {"Authorization": f"Basic {ADMIN_TOKEN}"}}),
        ("GET", "/admin", {"headers": {"Authorization": ADMIN_TOKEN}}),
        ("GET", "/admin", {"headers": good}),
        ("GET", "/admin/canary", {"headers": good}),
        ("POST", "/admin/canary", {"headers": good, "json": {"share": 0.2, "version": "1"}}),
        ("POST", "/admin/canary", {"headers": good, "json": {"share": 7}}),
        ("POST", "/admin/shadow", {"headers": good, "json": {"version": "99"}}),
        ("DELETE", "/admin/shadow", {"headers": good}),
        ("POST", "/admin/promote", {"headers": good, "json": {}}),
        ("POST", "/admin/rollback", {"headers": good, "json": {}}),
        ("POST", "/admin/reload", {"headers": good}),
        ("POST", "/references", {"headers": good, "json": {"id": "x", "csv": "a\n1\n"}}),
        ("POST", "/references", {"json": {"id": "y", "csv": "a\n1\n"}}),
        ("POST", "/models/train", {"json": {"model_name": "m"}}),
        ("GET", "/models/train/" + "0" * 32, {}),
        ("GET", "/models", {}),
        ("GET", "/ready", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
    ]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def test_a_running_server_never_shows_a_secret(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    serving_store: ModelStore,
    tmp_path: Path,
) -> None:
    make_topics(INFERENCE_EVENTS)
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    env = {
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "DRIFTLINE_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
        "DRIFTLINE_REDIS_URL": f"redis://:{REDIS_PASSWORD}@{LOOPBACK}:{free_port()}/0",
        "DRIFTLINE_ADMIN_TOKENS": f"{ADMIN_TOKEN},{SECOND_TOKEN}",
        "DRIFTLINE_SERVING_PORT": str(port),
        "DRIFTLINE_SERVING_ROLLOUT_POLL_S": "0.2",
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": serving_store.tracking_uri,
        "PYTHONPATH": str(ROOT),
    }

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    log = tmp_path / "serving.log"
    server = ManagedProcess("serving", [sys.executable, "-m", "serving"], log, healthy, env=env)
    server.start()
    captured: list[str] = []
    statuses: list[tuple[str, str, int]] = []
    try:
        server.wait_healthy(90)
        with httpx.Client(base_url=base, timeout=30) as client:
            for method, path, kwargs in _calls():
                answer = client.request(method, path, **kwargs)  # type: ignore[arg-type]
                statuses.append((method, path, answer.status_code))
                captured.append(f"{method} {path} {answer.headers} {answer.text}")
    finally:
        code = server.stop(grace_s=15)
    text = log.read_text(errors="replace")
    assert code in (0, -signal.SIGTERM), text[-3000:]  # uvicorn may re-raise the SIGTERM
    secrets = [ADMIN_TOKEN, SECOND_TOKEN, REDIS_PASSWORD, KAFKA_PASSWORD]
    assert not _leaks(text, secrets), f"secret in serving's log:\n{text[-3000:]}"
    for seen in captured:
        assert not _leaks(seen, secrets), seen[:2000]
    # the error paths really ran: a failing Redis was described, mistakes were answered
    assert ("POST", "/admin/canary", 503) in statuses, statuses
    assert ("GET", "/admin", 403) in statuses and ("GET", "/admin", 401) in statuses
    assert ("POST", "/predict", 413) in statuses and ("POST", "/predict", 200) in statuses
    assert not [s for s in statuses if s[2] >= 500 and s[1] not in _MAY_BE_UNAVAILABLE], statuses
    assert "redis" in text.lower()  # the outage was logged (without its password)


#: Routes whose dependency (Redis, MLflow run) is away or absent here: 5xx is their answer.
_MAY_BE_UNAVAILABLE = {"/admin/canary", "/admin/shadow", "/admin/promote", "/admin/rollback",
                       "/ready", "/models/train", "/admin/reload"}  # fmt: skip


def test_an_unreachable_mlflow_url_never_shows_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    caplog.set_level(logging.DEBUG)
    url = f"http://driftline:{MLFLOW_PASSWORD}@{LOOPBACK}:{free_port()}"
    split = load_split()
    config = ServingConfig(
        serving=ServingSettings(publish_events=False),
        admin=AdminSettings(tokens=SecretStr(ADMIN_TOKEN)),
        kafka=KafkaSettings(bootstrap_servers=f"{LOOPBACK}:9", topic_prefix="none."),
        data=DataSettings(data_dir=tmp_path),
        store=ModelStore(url),
        redis=None,
    )
    app = create_app(config)
    app.state.serving.model = LoadedModel(  # no lifespan: the model is not MLflow's here
        "breast-cancer-classifier", "1", "champion", split.features,
        build_pipeline().fit(split.x_train, split.y_train),
    )  # fmt: skip
    client = TestClient(app)
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answers = [
        client.post("/models/train", json={"model_name": "m"}, headers=good),
        client.get(f"/models/train/{uuid.uuid4().hex}"),
        client.post("/admin/reload", headers=good),
    ]
    assert [a.status_code for a in answers] == [503, 503, 503], [a.text for a in answers]
    assert answers[0].json()["error"] == "mlflow_unavailable"
    for answer in answers:
        assert MLFLOW_PASSWORD not in answer.text + str(answer.headers), answer.text
    assert MLFLOW_PASSWORD not in caplog.text
    assert MLFLOW_PASSWORD not in client.get("/metrics").text
