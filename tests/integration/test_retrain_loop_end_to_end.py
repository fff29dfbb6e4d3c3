"""The whole retrain loop through real components (issue 8, Tests).

Drift processor, SLO processor, alert evaluator, retrain worker, canary controller and
the serving app all run as the CLI starts them (threads of this process), on the
embedded broker, a real redis-server, Debian's Alertmanager and a sqlite MLflow store.
Nothing between two components is faked: each one only sees what the one before it
wrote to Kafka, Redis, Alertmanager or MLflow.

- drift → critical DriftScore → alert in Alertmanager → RetrainRequest from the alert
  path → MLflow run → gate → canary that serving routes → promotion;
- a candidate trained on label-shuffled feedback → rejected at the gate, no canary;
- a canary whose predictions fail in serving → rolled back, serving back to the champion.

Windows are event time: the drifted traffic is dated over the last twenty minutes (the
rule's ``for`` is 15 min), the live traffic of the canary is now, in 2 s SLO windows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retrain.canary_controller import CanaryController, CanaryDecision, CanaryLoop
from retrain.job import RetrainOutcome
from retrain.settings import CanaryAnalysisSettings, RetrainSettings
from retrain.training import train_and_register
from retrain.worker import RetrainWorker, make_handler
from schemas.breast_cancer import load_split
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import SingleObjectCodec
from schemas.events import now_ms
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.retrain_requests import retrain_request
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    INFERENCE_FEEDBACK,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig
from stream.alerting.app import build_alert_loop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from stream.drift_app import build_drift_loop
from stream.settings import DriftProcessorSettings, DriftStatsSettings, SloSettings
from stream.slo_app import build_slo_loop
from tests.integration.alerting_helpers import AlertmanagerServer
from tests.integration.conftest import ADMIN_HEADERS, SERVING_ADMIN_TOKEN
from tests.integration.loop_helpers import (
    MINUTE_MS,
    drifted_rows,
    malignant_heavy_rows,
    record_at,
    register_broken_version,
    running,
    send_labelled_rows,
)
from tests.integration.retrain_helpers import records_on, wait_for

ALL_TOPICS = (
    INFERENCE_EVENTS, INFERENCE_FEEDBACK, DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS,
    MODEL_DEPLOYMENTS, DEAD_LETTERS,
)  # fmt: skip
#: Live SLO windows of the canary phase: short, so three steps take seconds.
SLO_WINDOW_S = 2.0


@pytest.fixture(scope="module")
def loop_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A sqlite MLflow store (with a data dir: profiles) for this module's models."""
    return ModelStore.embedded(tmp_path_factory.mktemp("loop-mlflow"))


@pytest.fixture
def model(loop_store: ModelStore, make_topics: Callable[..., list[str]]) -> str:
    """A fresh model name with its baseline champion (version 1) and every loop topic."""
    make_topics(*ALL_TOPICS)
    name = f"loop-{uuid.uuid4().hex[:8]}"
    train_and_register(loop_store, name)
    return name


@pytest.fixture
def redis_settings(redis_url: str, redis_client: redis.Redis) -> RedisSettings:
    return RedisSettings(url=SecretStr(redis_url))


def retrain_settings(unique: Callable[[str], str]) -> RetrainSettings:
    return RetrainSettings(
        group_id=unique("retrain"), read_idle_s=1.0, poll_timeout_s=0.2, lock_wait_s=10.0
    )


def canary_settings(unique: Callable[[str], str]) -> CanaryAnalysisSettings:
    """Two 2 s windows per step, 5 canary requests each; latency never decides here (the
    latency rule has its unit tests; this machine's noise is no evidence)."""
    return CanaryAnalysisSettings(
        group_id=unique("canary"), windows=2, min_requests=5, latency_floor_ms=10_000.0,
        poll_timeout_s=0.2,
    )  # fmt: skip


def slo_loop(kafka: KafkaSettings, unique: Callable[[str], str], tmp_path: Path) -> Any:
    return build_slo_loop(
        kafka,
        SloSettings(
            group_id=unique("slo"), state_dir=tmp_path / "slo-state", window_s=SLO_WINDOW_S,
            allowed_lateness_s=0, poll_timeout_s=0.2, metrics_port=0, commit_interval_s=0,
        ),
    )  # fmt: skip


def serving(
    model_name: str, store: ModelStore, kafka: KafkaSettings, redis_settings: RedisSettings,
    tmp_path: Path,
) -> TestClient:  # fmt: skip
    config = ServingConfig(
        serving=ServingSettings(model_name=model_name, rollout_poll_s=0.2, publish_linger_ms=5),
        admin=AdminSettings(tokens=SecretStr(SERVING_ADMIN_TOKEN)),
        kafka=kafka, data=DataSettings(data_dir=tmp_path / "serving"), store=store,
        redis=redis_settings,
    )  # fmt: skip
    return TestClient(create_app(config))


class Traffic:
    """Live /predict calls with the validation rows; every answer kept (variant, version)."""

    def __init__(self, client: TestClient, model_name: str) -> None:
        self.client = client
        self.model_name = model_name
        split = load_split()
        self.rows = [dict(zip(split.features, r.tolist(), strict=True)) for r in split.x_validation]
        self.answers: list[tuple[int, str, str]] = []  # (status, variant, version)
        self.sent = 0

    def send(self, n: int) -> None:
        for _ in range(n):
            body = {
                "model_name": self.model_name, "features": self.rows[self.sent % len(self.rows)],
                "request_id": f"live-{uuid.uuid4().hex}",
            }  # fmt: skip
            self.sent += 1
            answer = self.client.post("/predict", json=body)
            got = answer.json()
            self.answers.append(
                (answer.status_code, got.get("variant", ""), got.get("model_version", ""))
            )

    def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Send in bursts until ``done`` (the bound only stops a broken run)."""
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.send(20)
            time.sleep(0.05)
        return done()

    def since(self, start: int) -> list[tuple[int, str, str]]:
        return self.answers[start:]


@pytest.fixture
def alert_loop_settings(
    unique: Callable[[str], str], alertmanager: AlertmanagerServer
) -> Iterator[tuple[AlertingSettings, AlertmanagerSettings]]:
    yield (
        AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2),
        AlertmanagerSettings(url=alertmanager.url, resend_interval_s=2.0),
    )


def test_drift_alert_retrain_canary_and_promotion_through_every_component(
    model: str, loop_store: ModelStore, kafka_settings: KafkaSettings,
    redis_settings: RedisSettings, alertmanager: AlertmanagerServer,
    alert_loop_settings: tuple[AlertingSettings, AlertmanagerSettings],
    unique: Callable[[str], str], tmp_path: Path,
) -> None:  # fmt: skip
    rollout = RolloutStore(redis.Redis.from_url(redis_settings.url.get_secret_value()))
    # A candidate that adapts to drifted traffic scores a little lower on the fixed,
    # pre-drift hold-out (docs/retrain.md, "End-to-end tests"): allow 0.05 here.
    settings = retrain_settings(unique).model_copy(update={"gate_max_regression": 0.05})
    outcomes: list[RetrainOutcome] = []
    decisions: list[CanaryDecision] = []
    drift = build_drift_loop(
        kafka_settings,
        DriftProcessorSettings(
            group_id=unique("drift"), state_dir=tmp_path / "drift-state", sliding_s=0,
            allowed_lateness_s=0, poll_timeout_s=0.2, metrics_port=0, commit_interval_s=0,
            feedback_join=False,
        ),
        DriftStatsSettings(reference_path=loop_store.profiles_dir),
    )  # fmt: skip
    alerts = build_alert_loop(kafka_settings, *alert_loop_settings)
    worker = RetrainWorker(
        settings, kafka_settings,
        make_handler(settings, kafka_settings, redis_settings, loop_store),
        on_outcome=outcomes.append,
    )  # fmt: skip
    controller = CanaryLoop(
        CanaryController(canary_settings(unique), kafka_settings, rollout, loop_store),
        decisions.append,
    )
    slo = slo_loop(kafka_settings, unique, tmp_path)
    # Induced drift: 17 one-minute windows of malignant traffic only (the reference is
    # 37 % malignant) with shifted class-neutral features, labelled, dated over the last
    # 20 minutes; one event at the end closes the last window.
    x, y = drifted_rows(17 * 110, seed=8)
    t0 = (now_ms() // MINUTE_MS - 20) * MINUTE_MS
    send_labelled_rows(
        kafka_settings, model, x, y, id_prefix="drift", first_ms=t0, step_ms=MINUTE_MS // 110
    )
    send_labelled_rows(
        kafka_settings, model, x[:1], y[:1], id_prefix="closer", first_ms=t0 + 19 * MINUTE_MS,
        step_ms=1,
    )  # fmt: skip
    with (
        serving(model, loop_store, kafka_settings, redis_settings, tmp_path) as client,
        running(drift=drift, alerts=alerts, worker=worker, controller=controller, slo=slo) as loops,
    ):
        [alert] = alertmanager.wait_for(True, timeout_s=90, alertname="HighDriftScore", model=model)
        assert wait_for(lambda: bool(outcomes) or loops.failed(), 120), loops.errors
        (outcome,) = outcomes
        assert outcome.status == "challenger", outcome.detail
        candidate = outcome.version
        assert candidate == "2"
        # serving routes the canary share, and the controller steps it up to promotion
        traffic = Traffic(client, model)
        assert traffic.until(
            lambda: any(d.action == "promoted" for d in decisions) or loops.failed(), 120
        ), (decisions, loops.errors)
        after_promotion = len(traffic.answers)
        assert wait_for(
            lambda: client.get("/models").json()["models"][0]["version"] == candidate, 30
        )
        traffic.send(20)
        models = client.get("/models").json()["models"][0]
    assert not loops.errors
    # the alert, in Alertmanager, from the stream evaluator
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["version"] == "1"
    assert alert["labels"]["evaluator"] == "stream"
    # the RetrainRequest the alert path published
    (request,) = records_on(kafka_settings, RETRAIN_REQUESTS, 1)
    assert request["trigger"] == "drift" and request["model_name"] == model
    assert request["urgency"] == "high" and request["evidence"]["scores"]["drift_score"] > 0.8
    assert request["evidence"]["details"]["alertname"] == "HighDriftScore"
    # the MLflow run: tags and lineage of that request
    run = loop_store.activate().get_run(outcome.run_id or "")
    tags, params = run.data.tags, run.data.params
    assert tags["driftline.trigger"] == "drift"
    assert tags["driftline.request_id"] == request["idempotency_key"]
    assert float(tags["driftline.drift_score"]) > 0.8
    assert tags["driftline.champion_version"] == "1" and tags["driftline.gate"] == "passed"
    assert tags["driftline.evidence.alertname"] == "HighDriftScore"
    # ... and which DriftScore record fired the alert: a critical window of this model
    evidence = record_at(kafka_settings, tags["driftline.evidence.evidence_record"])
    assert tags["driftline.evidence.evidence_record"].startswith(
        DRIFT_SCORES.prefixed(kafka_settings.topic_prefix).name
    )
    assert evidence["model_name"] == model and evidence["drift_score"] > 0.8
    assert evidence["window_end"] == request["evidence"]["window_end"]
    inference_topic = INFERENCE_EVENTS.prefixed(kafka_settings.topic_prefix).name
    feedback_topic = INFERENCE_FEEDBACK.prefixed(kafka_settings.topic_prefix).name
    assert inference_topic in params["lineage.inference_ranges"]
    assert feedback_topic in params["lineage.feedback_ranges"]
    assert run.data.metrics["recent_rows"] >= 17 * 110
    # serving answered canary requests with the candidate while it was the canary; once
    # it served the promoted champion, never a canary again
    during = traffic.since(0)[:after_promotion]
    assert set(during) <= {(200, "canary", candidate), (200, "baseline", "1"),
                           (200, "baseline", candidate)}  # fmt: skip
    last_canary = max(i for i, a in enumerate(during) if a[1] == "canary")
    promoted_from = min(
        (i for i, a in enumerate(during) if a == (200, "baseline", candidate)), default=len(during)
    )
    assert (200, "baseline", "1") in during and last_canary < promoted_from
    # the controller's decisions, the alias, the rollout state, the events
    assert [(d.action, d.share) for d in decisions] == [
        ("canary_step", 0.5), ("canary_step", 1.0), ("promoted", 1.0)
    ]  # fmt: skip
    assert loop_store.alias_version(model, "champion") == candidate
    state = rollout.read(model)
    assert state is not None and state.canary_version is None
    assert state.champion_version == candidate
    events = records_on(kafka_settings, MODEL_DEPLOYMENTS, 4)
    assert [e["action"] for e in events] == [
        "canary_started", "canary_step", "canary_step", "promoted"
    ]  # fmt: skip
    assert events[0]["canary_share"] == 0.1 and events[-1]["champion_version"] == candidate
    # after promotion serving answers every request with the new champion
    assert models["version"] == candidate and models["rollout"]["canary_version"] is None
    assert set(traffic.since(len(traffic.answers) - 20)) == {(200, "baseline", candidate)}


def test_a_candidate_trained_on_shuffled_labels_is_rejected_and_gets_no_traffic(
    model: str, loop_store: ModelStore, kafka_settings: KafkaSettings,
    redis_settings: RedisSettings, unique: Callable[[str], str], tmp_path: Path,
) -> None:  # fmt: skip
    """Feedback whose labels are a permutation of the truth (a broken labelling job) is
    what the worker trains on: the gate must refuse the result."""
    settings = retrain_settings(unique)
    x, y = malignant_heavy_rows(1200, 0.37, seed=11)
    shuffled = np.random.default_rng(12).permutation(y)
    send_labelled_rows(
        kafka_settings, model, x, shuffled, id_prefix="shuffled",
        first_ms=now_ms() - 10 * MINUTE_MS, step_ms=400,
    )  # fmt: skip
    request = retrain_request(model, "drift", "loop-test", scores={"drift_score": 0.9})
    producer = Producer(producer_config(kafka_settings))
    topic = RETRAIN_REQUESTS.prefixed(kafka_settings.topic_prefix).name
    producer.produce(
        topic, SingleObjectCodec().encode(RETRAIN_REQUEST, request), key=model.encode()
    )
    assert producer.flush(30) == 0
    outcomes: list[RetrainOutcome] = []
    worker = RetrainWorker(
        settings, kafka_settings,
        make_handler(settings, kafka_settings, redis_settings, loop_store),
        on_outcome=outcomes.append,
    )  # fmt: skip
    with (
        serving(model, loop_store, kafka_settings, redis_settings, tmp_path) as client,
        running(worker=worker) as loops,
    ):
        assert wait_for(lambda: bool(outcomes) or loops.failed(), 120), loops.errors
        traffic = Traffic(client, model)
        traffic.send(40)
        models = client.get("/models").json()["models"][0]
    (outcome,) = outcomes
    assert outcome.status == "rejected", outcome.detail
    assert "below the floor" in outcome.detail
    run = loop_store.activate().get_run(outcome.run_id or "")
    assert run.data.metrics["recent_rows"] == 1200
    assert run.data.tags["driftline.gate"] == "failed"
    assert run.data.tags["driftline.status"] == "rejected"
    assert "below the floor" in run.data.tags["driftline.gate_reason"]
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "rejected" and event["canary_version"] is None
    assert event["evidence"]["candidate_version"] == float(outcome.version or "nan")
    assert loop_store.alias_version(model, "challenger") is None
    assert loop_store.alias_version(model, "champion") == "1"
    assert (
        RolloutStore(redis.Redis.from_url(redis_settings.url.get_secret_value())).read(model)
        is None
    )
    assert models["rollout"]["canary_version"] is None
    assert set(traffic.answers) == {(200, "baseline", "1")}


def test_a_canary_failing_in_serving_is_rolled_back_and_serving_returns_to_the_champion(
    model: str, loop_store: ModelStore, kafka_settings: KafkaSettings,
    redis_settings: RedisSettings, unique: Callable[[str], str], tmp_path: Path,
) -> None:  # fmt: skip
    """A canary version that fails every prediction it is given, started with the admin
    API: its server errors reach its own SloWindows, and the controller rolls it back."""
    broken = register_broken_version(loop_store, model)
    rollout = RolloutStore(redis.Redis.from_url(redis_settings.url.get_secret_value()))
    decisions: list[CanaryDecision] = []
    controller = CanaryLoop(
        CanaryController(canary_settings(unique), kafka_settings, rollout, loop_store),
        decisions.append,
    )
    slo = slo_loop(kafka_settings, unique, tmp_path)
    with (
        serving(model, loop_store, kafka_settings, redis_settings, tmp_path) as client,
        running(controller=controller, slo=slo) as loops,
    ):
        started = client.post(
            "/admin/canary", json={"version": broken, "share": 0.3}, headers=ADMIN_HEADERS
        )
        assert started.status_code == 200, started.text
        traffic = Traffic(client, model)
        assert traffic.until(lambda: bool(decisions) or loops.failed(), 90), loops.errors
        rolled_back_at = len(traffic.answers)
        assert wait_for(
            lambda: client.get("/models").json()["models"][0]["rollout"]["canary_version"] is None,
            30,
        )
        traffic.send(20)
    assert not loops.errors
    failed = [a for a in traffic.since(0)[:rolled_back_at] if a[0] == 500]
    assert failed and all(a[0] in (200, 500) for a in traffic.answers)
    assert [(d.action, d.version) for d in decisions] == [("rolled_back", broken)]
    assert rollout.read(model) == RolloutState(None, 0.0)
    assert loop_store.alias_version(model, "champion") == "1"
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "rolled_back" and event["evidence"]["canary_error_rate"] > 0.5
    assert set(traffic.since(len(traffic.answers) - 20)) == {(200, "baseline", "1")}
