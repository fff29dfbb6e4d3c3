"""schemathesis against serving's own OpenAPI document: no generated request gets a 500.

The app runs for real under uvicorn on loopback (model loaded from a sqlite MLflow store
of this module's own, publishing to the embedded broker, rollout state in a Redis
database of its own), and every operation of ``/openapi.json`` gets a bounded number of
generated requests, valid and invalid, with the admin token (without one every admin
call would stop at the 401). A 500 is a bug; 502/503 are the documented answers of a
dependency being away and are allowed; every 4xx/5xx must be the JSON error shape.
Examples are derandomised, so a failure reproduces, and bounded so the module runs in
well under a minute.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis import Case

from driftline.ports import LOOPBACK, free_port
from retrain.training import train_and_register
from schemas.admin import ensure_topics, make_admin
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import INFERENCE_EVENTS, MODEL_DEPLOYMENTS, RETRAIN_REQUESTS
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig

TOKEN = "fuzz-admin-token"
#: Per operation; about 25 operations, so a few hundred requests in all.
EXAMPLES = 10
#: Status codes seen, so the last test can show the requests reached the handlers.
SEEN: Counter[int] = Counter()


@pytest.fixture(scope="module")
def base_url(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Serving under uvicorn in a thread, started once for the module."""
    root = tmp_path_factory.mktemp("fuzz")
    store = ModelStore.embedded(root / "mlflow")
    train_and_register(store)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"fz{free_port()}.")
    topics = [t.prefixed(kafka.topic_prefix) for t in (INFERENCE_EVENTS, MODEL_DEPLOYMENTS,
                                                        RETRAIN_REQUESTS)]  # fmt: skip
    ensure_topics(make_admin(kafka), topics)
    config = ServingConfig(
        serving=ServingSettings(shutdown_flush_s=1.0),
        admin=AdminSettings(tokens=SecretStr(TOKEN)),
        kafka=kafka,
        data=DataSettings(data_dir=root / "data"),
        store=store,
        redis=RedisSettings(url=SecretStr(redis_url.rsplit("/", 1)[0] + "/9")),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host=LOOPBACK, port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "serving did not start"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def _spec() -> dict[str, object]:
    """The OpenAPI document, built from the app without starting it (nothing is touched)."""
    config = ServingConfig(
        serving=ServingSettings(publish_events=False),
        data=DataSettings(data_dir=Path("/nonexistent/driftline-openapi-only")),
        store=ModelStore("sqlite:///:memory:"),
        redis=None,
    )
    return create_app(config).openapi()


# Loaded at import, so each operation is its own test item; requests go to `base_url`.
schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_500(case: Case[Any], base_url: str) -> None:
    response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"})
    SEEN[response.status_code] += 1
    where = f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
    assert response.status_code != 500, where
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), where
        assert "error" in response.json(), where


def test_the_fuzzed_server_is_still_healthy(base_url: str) -> None:
    """After everything generated, serving still answers (nothing wedged it), and the
    requests reached the handlers: accepted ones and refused ones of several kinds."""
    assert httpx.get(f"{base_url}/health", timeout=10).json() == {"status": "ok"}
    if SEEN:  # empty when this test runs alone
        assert sum(SEEN.values()) >= 100, SEEN
        assert {200, 422} <= set(SEEN) and len({c for c in SEEN if 400 <= c < 500}) >= 3, SEEN


def test_openapi_document_names_every_operation(base_url: str) -> None:
    """The fuzzing covers what the document lists: at least the known operation count."""
    paths = httpx.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    assert operations >= 20 and "/admin/promote" in paths and "/predict" in paths
