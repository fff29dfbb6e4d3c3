"""The retrain worker on the embedded broker, a real redis-server and a sqlite MLflow store."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from driftline.cli import app as cli
from retrain.coordination import lock_key
from retrain.dataset import build_training_set, replay_training_set
from retrain.exceptions import LockBusyError
from retrain.handler import RetrainHandler
from retrain.job import RetrainJob, RetrainOutcome, load_lineage
from retrain.settings import RetrainSettings
from retrain.training import train_and_register
from retrain.worker import RetrainWorker, make_handler
from schemas.breast_cancer import DEFAULT_MODEL_NAME
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.retrain_requests import retrain_request
from schemas.rollout_state import RolloutStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import (
    DEAD_LETTERS,
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
)
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig
from tests.integration.conftest import (
    ADMIN_HEADERS,
    SERVING_ADMIN_TOKEN,
    assigned_consumer,
    read_all,
)
from tests.integration.retrain_helpers import (
    WorkerThread,
    records_on,
    send_labelled_traffic,
    wait_for,
)


@pytest.fixture(scope="module")
def retrain_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A sqlite MLflow store with the baseline champion, shared by this module's tests."""
    store = ModelStore.embedded(tmp_path_factory.mktemp("retrain-mlflow"))
    train_and_register(store)
    return store


@pytest.fixture
def settings(unique: Callable[[str], str]) -> RetrainSettings:
    return RetrainSettings(
        group_id=unique("retrain"), read_idle_s=1.0, poll_timeout_s=0.2, lock_wait_s=10.0
    )


@pytest.fixture
def topics(make_topics: Callable[..., list[str]]) -> None:
    make_topics(
        RETRAIN_REQUESTS, MODEL_DEPLOYMENTS, INFERENCE_EVENTS, INFERENCE_FEEDBACK, DEAD_LETTERS
    )


@pytest.fixture
def redis_settings(redis_url: str, redis_client: redis.Redis) -> RedisSettings:
    """The session's Redis (emptied after the test by ``redis_client``)."""
    return RedisSettings(url=SecretStr(redis_url))


def _handler(
    settings: RetrainSettings,
    kafka: KafkaSettings,
    redis_settings: RedisSettings,
    store: ModelStore,
    on_fitted: Callable[[Mapping[str, Any]], None] | None = None,
) -> RetrainHandler:
    client = redis.Redis.from_url(redis_settings.url.get_secret_value())
    job = RetrainJob(settings, kafka, store, RolloutStore(client), SingleObjectCodec(), on_fitted)
    return RetrainHandler(settings, client, store, job)


def test_post_models_train_becomes_a_canary_that_serving_picks_up(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
    tmp_path: Path,
) -> None:
    name = DEFAULT_MODEL_NAME
    champion = retrain_store.alias_version(name, "champion")
    send_labelled_traffic(kafka_settings, name, 600, id_prefix="e2e")  # same hold-out each run
    config = ServingConfig(
        serving=ServingSettings(rollout_poll_s=0.2),
        admin=AdminSettings(tokens=SecretStr(SERVING_ADMIN_TOKEN)),
        kafka=kafka_settings,
        data=DataSettings(data_dir=tmp_path),
        store=retrain_store,
        redis=redis_settings,
    )
    outcomes: list[RetrainOutcome] = []
    handler = make_handler(settings, kafka_settings, redis_settings, retrain_store)
    worker = RetrainWorker(settings, kafka_settings, handler, on_outcome=outcomes.append)
    with TestClient(create_app(config)) as client:
        body = {"model_name": name, "reason": "integration test"}
        assert client.post("/models/train", json=body).status_code == 401
        accepted = client.post("/models/train", json=body, headers=ADMIN_HEADERS)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["run_id"]
        assert accepted.json()["status_url"] == f"/models/train/{run_id}"
        assert client.get(f"/models/train/{run_id}").json()["status"] == "queued"
        with WorkerThread(worker) as running:
            assert wait_for(lambda: bool(outcomes) or running.error is not None)
        assert running.error is None
        (outcome,) = outcomes
        assert (outcome.status, outcome.run_id) == ("challenger", run_id), outcome.detail
        version = outcome.version
        assert version is not None and version != champion
        assert retrain_store.alias_version(name, "challenger") == version
        state = RolloutStore(redis.Redis.from_url(redis_settings.url.get_secret_value())).read(name)
        assert state is not None and (state.canary_version, state.canary_share) == (version, 0.1)

        def canary_served() -> bool:
            rollout = client.get("/models").json()["models"][0]["rollout"]
            return bool(rollout["canary_version"] == version and rollout["canary_share"] == 0.1)

        assert wait_for(canary_served, 30)
        status = client.get(f"/models/train/{run_id}").json()
    assert status["status"] == "challenger" and status["mlflow_status"] == "FINISHED"
    assert status["model_version"] == version and status["trigger"] == "manual"
    assert status["tags"]["driftline.champion_version"] == champion
    for metric in ("accuracy", "roc_auc", "f1", "calibration_error"):
        assert f"holdout_{metric}" in status["metrics"] and f"recent_{metric}" in status["metrics"]
    assert status["metrics"]["recent_rows"] == 600
    params = retrain_store.activate().get_run(run_id).data.params
    inference_topic = INFERENCE_EVENTS.prefixed(kafka_settings.topic_prefix).name
    assert inference_topic in params["lineage.inference_ranges"]
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "canary_started" and event["canary_version"] == version
    assert event["champion_version"] == champion and event["canary_share"] == 0.1


def test_models_train_refuses_client_mistakes_precisely(
    kafka_settings: KafkaSettings, retrain_store: ModelStore, topics: None, tmp_path: Path
) -> None:
    config = ServingConfig(
        admin=AdminSettings(tokens=SecretStr(SERVING_ADMIN_TOKEN)),
        kafka=kafka_settings, data=DataSettings(data_dir=tmp_path), store=retrain_store,
        redis=None,
    )  # fmt: skip
    with TestClient(create_app(config)) as client:
        wrong = client.post("/models/train", json={"model_name": "m"}, headers={
            "Authorization": "Bearer nope"})  # fmt: skip
        assert wrong.status_code == 403
        for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 403)):
            # the token is checked before the body: a bad body without one is no 422
            refused = client.post("/models/train", json={"colour": 1}, headers=headers)
            assert refused.status_code == status, refused.text
        malformed = client.post(
            "/models/train", content=b"{",
            headers={**ADMIN_HEADERS, "Content-Type": "application/json"},
        )  # fmt: skip
        assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
        bad = client.post(
            "/models/train", json={"model_name": "m", "parameters": {"gamma": 1, "C": -1}},
            headers=ADMIN_HEADERS,
        )  # fmt: skip
        assert bad.status_code == 422 and bad.json()["location"] == "parameters.C"
        assert "gamma: unknown" in bad.json()["message"]
        unknown = client.post(
            "/models/train", json={"model_name": "m", "dataset": "nope"}, headers=ADMIN_HEADERS
        )
        assert unknown.status_code == 404 and "'training'" in unknown.json()["message"]
        extra = client.post(
            "/models/train", json={"model_name": "m", "colour": 1}, headers=ADMIN_HEADERS
        )
        assert extra.status_code == 422 and extra.json()["location"] == "body.colour"
        typo = client.post("/models/train", json={"model_name": "m"}, headers=ADMIN_HEADERS)
        assert typo.status_code == 404 and typo.json()["error"] == "unknown_model", typo.text
        assert DEFAULT_MODEL_NAME in typo.json()["message"]  # names what the registry holds
        assert "m" not in retrain_store.registered_models()  # and registers nothing
        missing = client.get(f"/models/train/{uuid.uuid4().hex}")
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_run"
        assert client.get("/models/train/..%2Fx").status_code == 404


def test_models_train_is_503_when_kafka_is_away(retrain_store: ModelStore, tmp_path: Path) -> None:
    """No broker: the run is closed as failed and the caller gets 503 with the reason."""
    nowhere = KafkaSettings(bootstrap_servers="127.0.0.1:9", topic_prefix="none.")
    config = ServingConfig(
        admin=AdminSettings(tokens=SecretStr(SERVING_ADMIN_TOKEN)),
        serving=ServingSettings(publish_events=False),
        kafka=nowhere, data=DataSettings(data_dir=tmp_path), store=retrain_store, redis=None,
    )  # fmt: skip
    with TestClient(create_app(config)) as client:
        answer = client.post(
            "/models/train",
            json={"model_name": "away-model", "create_model": True},
            headers=ADMIN_HEADERS,
        )
    assert answer.status_code == 503 and answer.json()["error"] == "kafka_unavailable"
    runs = retrain_store.activate().search_runs(
        [retrain_store.experiment_id()], "tags.`driftline.model_name` = 'away-model'"
    )
    assert [r.data.tags["driftline.status"] for r in runs] == ["failed"]


def test_a_burst_of_1000_requests_within_the_cooldown_trains_once(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    name = f"burst-{uuid.uuid4().hex[:6]}"
    codec = SingleObjectCodec()
    producer = Producer(producer_config(kafka_settings))
    topic = RETRAIN_REQUESTS.prefixed(kafka_settings.topic_prefix).name
    keys = [f"drift-{i % 900}" for i in range(1000)]  # 900 distinct keys, 100 replays
    for key in keys:
        request = retrain_request(
            name, "drift", "test", idempotency_key=key, scores={"drift_score": 0.9}
        )
        producer.produce(topic, codec.encode(RETRAIN_REQUEST, request), key=name.encode())
    assert producer.flush(30) == 0
    quick = settings.model_copy(update={"window_s": 0.0})
    outcomes: list[RetrainOutcome] = []
    handler = make_handler(quick, kafka_settings, redis_settings, retrain_store)
    worker = RetrainWorker(quick, kafka_settings, handler, on_outcome=outcomes.append)
    with WorkerThread(worker) as running:
        assert wait_for(lambda: len(outcomes) >= 1000 or running.error is not None, 240)
    assert running.error is None
    statuses = [o.status for o in outcomes]
    assert len(statuses) == 1000
    assert statuses.count("challenger") == 1 and statuses[0] == "challenger"
    assert statuses.count("suppressed") == 899 and statuses.count("duplicate") == 100
    client = retrain_store.activate()
    runs = client.search_runs(
        [retrain_store.experiment_id()], f"tags.`driftline.model_name` = '{name}'"
    )
    assert len(runs) == 1
    assert len(client.search_model_versions(f"name = '{name}'")) == 1


def test_two_workers_never_train_one_model_at_once(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    """A holds the lock (renewed past its ttl) while B tries: B is refused, never trains."""
    name = f"locked-{uuid.uuid4().hex[:6]}"
    quick = settings.model_copy(update={"window_s": 0.0, "lock_ttl_s": 1.5, "lock_wait_s": 4.0})
    inside: list[str] = []
    a_inside, release_a = threading.Event(), threading.Event()

    def hook(request: Mapping[str, Any]) -> None:
        inside.append(request["idempotency_key"])
        if request["idempotency_key"] == "a":
            a_inside.set()
            release_a.wait(60)

    a = _handler(quick, kafka_settings, redis_settings, retrain_store, hook)
    b = _handler(quick, kafka_settings, redis_settings, retrain_store, hook)
    results: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: results.setdefault("a", a.handle(retrain_request(
            name, "manual", "test", idempotency_key="a", urgent=True))),
    )  # fmt: skip
    thread.start()
    assert a_inside.wait(60)
    with pytest.raises(LockBusyError):  # waited 4 s: more than twice the lock's ttl
        b.handle(retrain_request(name, "manual", "test", idempotency_key="b", urgent=True))
    assert inside == ["a"]
    release_a.set()
    thread.join(60)
    assert results["a"].status == "challenger"
    assert b.handle(
        retrain_request(name, "manual", "test", idempotency_key="b", urgent=True)
    ).status in ("challenger", "rejected")
    assert inside == ["a", "b"]
    assert redis.Redis.from_url(redis_settings.url.get_secret_value()).get(lock_key(name)) is None


class Crash(BaseException):
    """A worker dying mid-training: nothing below it handles this."""


def test_a_request_whose_worker_dies_is_retried_into_the_same_run(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    name = f"crash-{uuid.uuid4().hex[:6]}"
    quick = settings.model_copy(update={"window_s": 0.0})
    runs: list[str] = []

    def crash(request: Mapping[str, Any]) -> None:
        raise Crash

    request = retrain_request(name, "drift", "test", idempotency_key="only-once")
    producer = Producer(producer_config(kafka_settings))
    topic = RETRAIN_REQUESTS.prefixed(kafka_settings.topic_prefix).name
    producer.produce(topic, SingleObjectCodec().encode(RETRAIN_REQUEST, request), key=name.encode())
    assert producer.flush(30) == 0
    dying = RetrainWorker(quick, kafka_settings, _handler(
        quick, kafka_settings, redis_settings, retrain_store, crash))  # fmt: skip
    with WorkerThread(dying) as first:
        assert wait_for(lambda: first.error is not None)
    assert isinstance(first.error, Crash)
    client = redis.Redis.from_url(redis_settings.url.get_secret_value())
    opened = client.get("driftline:retrain:run:only-once")
    assert opened is not None
    outcomes: list[RetrainOutcome] = []
    healthy = RetrainWorker(
        quick, kafka_settings, _handler(quick, kafka_settings, redis_settings, retrain_store),
        on_outcome=outcomes.append,
    )  # fmt: skip
    with WorkerThread(healthy) as second:
        assert wait_for(lambda: bool(outcomes) or second.error is not None)
    assert second.error is None
    runs = [o.run_id or "" for o in outcomes]
    expected = opened.decode() if isinstance(opened, bytes) else opened
    assert runs == [expected] and outcomes[0].status == "challenger"


def test_replay_rebuilds_the_identical_training_set(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"replay-{uuid.uuid4().hex[:6]}"
    send_labelled_traffic(kafka_settings, name, 120)
    handler = _handler(settings, kafka_settings, redis_settings, retrain_store)
    outcome = handler.handle(retrain_request(name, "manual", "test"))
    assert outcome.run_id is not None and outcome.fingerprint is not None
    send_labelled_traffic(kafka_settings, name, 30)  # newer traffic must not leak in
    lineage = load_lineage(retrain_store, outcome.run_id)
    assert lineage is not None
    replayed = replay_training_set(kafka_settings, settings, lineage, SingleObjectCodec())
    assert replayed.fingerprint() == outcome.fingerprint
    assert replayed.recent_rows == 120
    live = build_training_set(
        kafka_settings, settings, retrain_request(name, "manual", "test"), SingleObjectCodec()
    )
    assert live.recent_rows == 150 and live.fingerprint() != outcome.fingerprint
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", retrain_store.tracking_uri)
    result = CliRunner().invoke(cli, ["retrain", "--replay", outcome.run_id])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output


def test_a_candidate_failing_the_gate_is_rejected_not_rolled_out(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    """C=1e-6 regularises the model to the majority class: below every floor."""
    name = DEFAULT_MODEL_NAME
    challenger = retrain_store.alias_version(name, "challenger")
    quick = settings.model_copy(update={"window_s": 0.0})
    handler = _handler(quick, kafka_settings, redis_settings, retrain_store)
    request = retrain_request(name, "manual", "test", parameters={"C": 1e-6}, urgent=True)
    outcome = handler.handle(request)
    assert outcome.status == "rejected" and outcome.run_id is not None
    assert "holdout f1" in outcome.detail and "below the floor" in outcome.detail
    tags = retrain_store.activate().get_run(outcome.run_id).data.tags
    assert tags["driftline.gate"] == "failed" and tags["driftline.status"] == "rejected"
    assert "below the floor" in tags["driftline.gate_reason"]
    assert retrain_store.alias_version(name, "challenger") == challenger
    assert (
        RolloutStore(redis.Redis.from_url(redis_settings.url.get_secret_value())).read(name) is None
    )
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "rejected" and event["canary_version"] is None
    assert outcome.version is not None and event["evidence"]["candidate_version"] == float(
        outcome.version
    )
    assert "failed the gate" in event["reason"]


def test_an_undecodable_request_goes_to_dead_letters_and_the_next_one_is_handled(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    name = f"dlq-{uuid.uuid4().hex[:6]}"
    producer = Producer(producer_config(kafka_settings))
    topic = RETRAIN_REQUESTS.prefixed(kafka_settings.topic_prefix).name
    good = retrain_request(name, "drift", "test")
    producer.produce(topic, b"not a retrain request", key=name.encode())
    producer.produce(topic, SingleObjectCodec().encode(RETRAIN_REQUEST, good), key=name.encode())
    assert producer.flush(30) == 0
    quick = settings.model_copy(update={"window_s": 0.0})
    outcomes: list[RetrainOutcome] = []
    worker = RetrainWorker(
        quick, kafka_settings, make_handler(quick, kafka_settings, redis_settings, retrain_store),
        on_outcome=outcomes.append,
    )  # fmt: skip
    with WorkerThread(worker) as running:
        assert wait_for(lambda: bool(outcomes) or running.error is not None)
    assert running.error is None and [o.status for o in outcomes] == ["challenger"]
    dead_topic = DEAD_LETTERS.prefixed(kafka_settings.topic_prefix).name
    consumer = assigned_consumer(kafka_settings, dead_topic, 1, f"t-{uuid.uuid4().hex[:8]}")
    try:
        (dead,) = read_all(consumer, 1, timeout_s=30)
    finally:
        consumer.close()
    headers = dict(dead.headers() or [])  # type: ignore[attr-defined]
    assert headers["driftline.dlq.reason"] == b"bad_magic"
    assert dead.value() == b"not a retrain request"  # type: ignore[attr-defined]


def test_a_request_that_always_fails_is_dead_lettered_after_max_attempts_and_the_next_runs(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug on one request (not a dependency being away) must not stall its partition."""
    name = f"poison-{uuid.uuid4().hex[:6]}"
    producer = Producer(producer_config(kafka_settings))
    topic = RETRAIN_REQUESTS.prefixed(kafka_settings.topic_prefix).name
    poison = retrain_request(name, "drift", "test", idempotency_key=f"{name}-poison")
    good = retrain_request(name, "drift", "test", idempotency_key=f"{name}-good")
    for request in (poison, good):  # same key: same partition, the good one behind the bad
        value = SingleObjectCodec().encode(RETRAIN_REQUEST, request)
        producer.produce(topic, value, key=name.encode())
    assert producer.flush(30) == 0
    quick = settings.model_copy(update={"window_s": 0.0, "max_attempts": 3})
    handler = make_handler(quick, kafka_settings, redis_settings, retrain_store)
    real_handle = handler.handle
    attempts: list[str] = []

    def handle(request: Mapping[str, Any], progress: Any = None) -> RetrainOutcome:
        attempts.append(str(request["idempotency_key"]))
        if request["idempotency_key"] == poison["idempotency_key"]:
            raise ValueError("a bug no retry can fix, at http://user:s3cret@mlflow:5000")
        return real_handle(request, progress)

    monkeypatch.setattr(handler, "handle", handle)
    outcomes: list[RetrainOutcome] = []
    worker = RetrainWorker(
        quick, kafka_settings, handler, on_outcome=outcomes.append, retry_backoff_s=0.05
    )
    with WorkerThread(worker) as running:
        assert wait_for(lambda: bool(outcomes) or running.error is not None)
    assert running.error is None and [o.status for o in outcomes] == ["challenger"]
    assert attempts == [poison["idempotency_key"]] * 3 + [good["idempotency_key"]]
    assert worker.dead_lettered == 1
    dead_topic = DEAD_LETTERS.prefixed(kafka_settings.topic_prefix).name
    consumer = assigned_consumer(kafka_settings, dead_topic, 1, f"t-{uuid.uuid4().hex[:8]}")
    try:
        (dead,) = read_all(consumer, 1, timeout_s=30)
    finally:
        consumer.close()
    headers = dict(dead.headers() or [])  # type: ignore[attr-defined]
    assert headers["driftline.dlq.reason"] == b"processing_failed"
    detail = headers["driftline.dlq.detail"].decode()
    assert detail.startswith("ValueError: a bug no retry can fix") and "3 times" in detail
    assert "s3cret" not in detail and headers["driftline.dlq.group"] == quick.group_id.encode()
    decoded = SingleObjectCodec().decode(dead.value()).value  # type: ignore[attr-defined]
    assert decoded["idempotency_key"] == poison["idempotency_key"]


def test_driftline_retrain_model_trains_here_with_the_workers_rules(
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("DRIFTLINE_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.setenv("DRIFTLINE_REDIS_URL", redis_settings.url.get_secret_value())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", retrain_store.tracking_uri)
    monkeypatch.setenv("DRIFTLINE_RETRAIN_WINDOW_S", "0")
    typo = CliRunner().invoke(cli, ["retrain", "--model", name])
    assert typo.exit_code == 1 and f"unknown model {name!r}" in typo.output  # registers nothing
    # A fresh name (its own cooldown), registered first: the CLI retrains only known models.
    retrain_store.activate().create_registered_model(name)
    first = CliRunner().invoke(cli, ["retrain", "--model", name, "--reason", "cli test"])
    assert first.exit_code == 0, first.output
    assert "challenger" in first.output
    again = CliRunner().invoke(cli, ["retrain", "--model", name])
    assert again.exit_code == 0 and "suppressed" in again.output  # within the cooldown
    assert retrain_store.alias_version(name, "challenger") == "1"
    usage = CliRunner().invoke(cli, ["retrain"])
    assert usage.exit_code == 2 and "--model" in usage.output


def test_a_retrain_that_fails_is_recorded_and_does_not_hold_the_cooldown(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    name = f"fails-{uuid.uuid4().hex[:6]}"
    quick = settings.model_copy(update={"window_s": 0.0})

    def broken(request: Mapping[str, Any]) -> None:
        if request["idempotency_key"] == "first":
            raise ValueError("a bug no retry can fix")

    handler = _handler(quick, kafka_settings, redis_settings, retrain_store, broken)
    failed = handler.handle(retrain_request(name, "drift", "test", idempotency_key="first"))
    assert failed.status == "failed" and "ValueError: a bug" in failed.detail
    assert failed.run_id is not None
    tags = retrain_store.activate().get_run(failed.run_id).data.tags
    assert tags["driftline.status"] == "failed"
    again = handler.handle(retrain_request(name, "drift", "test", idempotency_key="first"))
    assert again.status == "duplicate"
    after = handler.handle(retrain_request(name, "drift", "test", idempotency_key="second"))
    assert after.status == "challenger"  # not suppressed by the failed one's cooldown


def test_a_request_naming_a_run_mlflow_does_not_have_fails_instead_of_retrying_for_ever(
    settings: RetrainSettings,
    kafka_settings: KafkaSettings,
    redis_settings: RedisSettings,
    retrain_store: ModelStore,
    topics: None,
) -> None:
    """An outside producer's (or a deleted run's) mlflow_run_id: no retry can fix it, so
    the worker records the outcome and moves on instead of blocking its partition."""
    handler = _handler(settings, kafka_settings, redis_settings, retrain_store)
    missing = uuid.uuid4().hex
    request = retrain_request(
        f"ghost-{uuid.uuid4().hex[:6]}", "manual", "test", mlflow_run_id=missing, urgent=True
    )
    outcome = handler.handle(request)
    assert outcome.status == "failed" and missing in outcome.detail
    assert handler.handle(request).status == "duplicate"  # recorded, so a redelivery skips it
