"""The retrain worker when MLflow is away, and when MLflow refuses one request for good.

- MLflow away: the tracking URI points at a port where nothing listens yet. The worker
  retries the request without committing it; once a real MLflow server (``mlflow server``
  of mlflow-skinny, on a sqlite store) starts on that port, the same worker trains it
  into one run. Nothing is lost, nothing is trained twice.
- MLflow refusing: a request naming a deleted run (every write to it is refused with
  ``INVALID_PARAMETER_VALUE``) is recorded as failed and committed, and the request
  behind it on the same partition is trained; it used to be retried for ever.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr

from driftline.ports import LOOPBACK, free_port
from driftline.processes import ManagedProcess
from retrain.job import RetrainOutcome
from retrain.settings import RetrainSettings
from retrain.worker import RetrainWorker, make_handler
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import consumer_config, producer_config
from schemas.model_registry import ModelStore
from schemas.retrain_requests import open_retrain_run, retrain_request
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import (
    DEAD_LETTERS,
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
)
from tests.integration.retrain_helpers import WorkerThread, wait_for

#: What ``mlflow server`` needs beyond mlflow-skinny (the dev extra installs them).
SERVER_MODULES = ("flask", "flask_cors", "graphene")


@pytest.fixture
def redis_settings(redis_url: str, redis_client: redis.Redis) -> RedisSettings:
    return RedisSettings(url=SecretStr(redis_url))


@pytest.fixture
def topics(make_topics: Callable[..., list[str]]) -> None:
    make_topics(
        RETRAIN_REQUESTS, MODEL_DEPLOYMENTS, INFERENCE_EVENTS, INFERENCE_FEEDBACK, DEAD_LETTERS
    )


def settings(unique: Callable[[str], str]) -> RetrainSettings:
    """Reference data only (window 0): these tests are about MLflow, not the data."""
    return RetrainSettings(
        group_id=unique("retrain"), window_s=0.0, read_idle_s=1.0, poll_timeout_s=0.2,
        lock_wait_s=10.0,
    )  # fmt: skip


def publish(kafka: KafkaSettings, *requests: dict[str, object]) -> None:
    """Requests keyed by model: one model's requests are on one partition, in order."""
    producer = Producer(producer_config(kafka))
    topic = RETRAIN_REQUESTS.prefixed(kafka.topic_prefix).name
    for request in requests:
        value = SingleObjectCodec().encode(RETRAIN_REQUEST, request)
        producer.produce(topic, value, key=str(request["model_name"]).encode())
    assert producer.flush(30) == 0


def committed(kafka: KafkaSettings, group: str) -> list[int]:
    """The group's committed offsets on retrain.requests (negative: none)."""
    topic = RETRAIN_REQUESTS.prefixed(kafka.topic_prefix).name
    consumer = Consumer(consumer_config(kafka, group))
    try:
        wanted = [TopicPartition(topic, p) for p in range(RETRAIN_REQUESTS.partitions)]
        return [tp.offset for tp in consumer.committed(wanted, timeout=10)]
    finally:
        consumer.close()


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def mlflow_server(port: int, workdir: Path) -> ManagedProcess:
    """``mlflow server`` on a sqlite store, serving artifacts itself."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    return ManagedProcess(
        name="mlflow",
        argv=[sys.executable, "-m", "mlflow", "server", "--host", LOOPBACK, "--port", str(port),
              "--workers", "1", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
              "--artifacts-destination", str(workdir / "artifacts")],
        log_path=workdir / "mlflow-server.log",
        health=lambda: healthy(f"{url}/health"),
        # no background job runner: it is not used here and slows the start
        env={"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip


def test_a_retrain_waits_for_mlflow_and_trains_once_it_is_back(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, topics: None,
    unique: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"mlflow server needs {', '.join(missing)} (pip install -e '.[dev]')")
    # MLflow's client retries a refused connection for minutes by default; the worker has
    # its own retry, so each attempt here fails at once.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    port = free_port()
    store = ModelStore(f"http://{LOOPBACK}:{port}", data_dir=tmp_path / "data")
    quick = settings(unique)
    model = f"outage-{uuid.uuid4().hex[:6]}"
    request = retrain_request(model, "drift", "outage-test", scores={"drift_score": 0.9})
    publish(kafka_settings, request)
    outcomes: list[RetrainOutcome] = []
    worker = RetrainWorker(
        quick, kafka_settings, make_handler(quick, kafka_settings, redis_settings, store),
        on_outcome=outcomes.append, retry_backoff_s=0.3,
    )  # fmt: skip
    server = mlflow_server(port, tmp_path / "mlflow")
    try:
        with caplog.at_level("WARNING", logger="retrain.worker"), WorkerThread(worker) as running:

            def retried() -> int:
                return sum("not finished (MlflowException" in r.message for r in caplog.records)

            assert wait_for(lambda: retried() >= 3 or running.error is not None, 60)
            assert outcomes == [] and worker.handled == 0 and worker.dead_lettered == 0
            assert all(offset < 0 for offset in committed(kafka_settings, quick.group_id))
            server.start()
            server.wait_healthy(120)
            assert wait_for(lambda: bool(outcomes) or running.error is not None, 90)
        assert running.error is None
        (outcome,) = outcomes
        assert outcome.status == "challenger", outcome.detail
        client = store.activate()
        runs = client.search_runs(
            [store.experiment_id()], f"tags.`driftline.model_name` = '{model}'"
        )
        assert [r.info.run_id for r in runs] == [outcome.run_id]  # one run, not one per try
        tags = runs[0].data.tags
        assert tags["driftline.request_id"] == request["idempotency_key"]
        assert tags["driftline.trigger"] == "drift" and tags["driftline.status"] == "challenger"
        assert store.alias_version(model, "challenger") == outcome.version == "1"
        assert max(committed(kafka_settings, quick.group_id)) == 1  # past the one request
    finally:
        server.stop()


def test_a_request_naming_a_deleted_run_fails_and_the_next_request_is_trained(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, topics: None,
    unique: Callable[[str], str], tmp_path: Path,
) -> None:  # fmt: skip
    store = ModelStore.embedded(tmp_path / "mlflow")
    model = f"deleted-{uuid.uuid4().hex[:6]}"
    deleted = open_retrain_run(store, model, "manual", "deleted-run-key")
    store.activate().delete_run(deleted)
    quick = settings(unique)
    publish(
        kafka_settings,
        retrain_request(model, "manual", "test", mlflow_run_id=deleted, urgent=True),
        retrain_request(model, "drift", "test", urgent=True),
    )
    outcomes: list[RetrainOutcome] = []
    worker = RetrainWorker(
        quick, kafka_settings, make_handler(quick, kafka_settings, redis_settings, store),
        on_outcome=outcomes.append, retry_backoff_s=0.1,
    )  # fmt: skip
    with WorkerThread(worker) as running:
        assert wait_for(lambda: len(outcomes) >= 2 or running.error is not None, 60)
    assert running.error is None
    assert [o.status for o in outcomes] == ["failed", "challenger"]
    assert "was deleted" in outcomes[0].detail and worker.dead_lettered == 0
