"""The canary controller's shadow analysis on the embedded broker, a real redis-server and a
sqlite MLflow: ShadowComparisons on ``shadow.comparisons`` promote a shadow that agrees
with the champion and stop one that clearly does not (DRIFTLINE_CANARY_SHADOW_AUTO=true)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retrain.canary_controller import CanaryController, CanaryLoop
from retrain.settings import CanaryAnalysisSettings, ShadowAnalysisSettings
from retrain.shadow_controller import TAG_DECISION, ShadowController, ShadowDecision
from retrain.training import train_and_register
from schemas.catalog import SHADOW_COMPARISON
from schemas.codec import SingleObjectCodec
from schemas.events import now_ms
from schemas.kafka_config import consumer_config, producer_config
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.shadow_analysis import ShadowAnalysisStore
from schemas.topics import DEAD_LETTERS, MODEL_DEPLOYMENTS, SHADOW_COMPARISONS, SLO_WINDOWS
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig
from tests.integration.retrain_helpers import WorkerThread, records_on, wait_for
from tests.records_factory import samples

pytestmark = pytest.mark.integration

SHADOW = ShadowAnalysisSettings(auto=True, windows=3, min_pairs=50)


@pytest.fixture(scope="module")
def shadow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStore]:
    yield ModelStore.embedded(tmp_path_factory.mktemp("shadow-mlflow"))


def _model_with_shadow(store: ModelStore, rollout: RolloutStore) -> tuple[str, str]:
    """A model with a champion (v1) and a shadow (v2), as shadow-mode retraining leaves it."""
    name = f"shadow-{uuid.uuid4().hex[:6]}"
    train_and_register(store, name)
    candidate = train_and_register(store, name, alias="challenger", parameters={"C": 0.5})
    rollout.write_shadow(name, candidate.version)
    return name, candidate.version


def _comparison(model: str, shadow: str, start: int, agreement: float, pairs: int) -> bytes:
    record: dict[str, Any] = samples()["ShadowComparison"] | {
        "model_name": model, "champion_version": "1", "shadow_version": shadow,
        "window_start": start, "window_end": start + 60_000, "pair_count": pairs,
        "agreement_rate": agreement, "champion_latency_p99_ms": 8.0,
        "shadow_latency_p99_ms": 9.0,
    }  # fmt: skip
    return SingleObjectCodec().encode(SHADOW_COMPARISON, record)


def _run(
    kafka: KafkaSettings, store: ModelStore, rollout: RolloutStore, model: str,
    comparisons: list[bytes],
) -> tuple[list[ShadowDecision], str]:  # fmt: skip
    """Produce ``comparisons``, run ``driftline canary run``'s loop until a shadow decision."""
    producer = Producer(producer_config(kafka))
    topic = SHADOW_COMPARISONS.prefixed(kafka.topic_prefix).name
    for value in comparisons:
        producer.produce(topic, value, key=model.encode())
    assert producer.flush(30) == 0
    group = f"canary-{uuid.uuid4().hex[:6]}"
    canary = CanaryController(
        CanaryAnalysisSettings(group_id=group, poll_timeout_s=0.2), kafka, rollout, store
    )
    decisions: list[ShadowDecision] = []
    loop = CanaryLoop(
        canary, shadow=ShadowController(SHADOW, kafka, rollout, store),
        on_shadow_decision=decisions.append,
    )  # fmt: skip
    with WorkerThread(loop) as running:
        assert wait_for(lambda: bool(decisions) or running.error is not None, 60)
    assert running.error is None
    return decisions, group


def _committed(kafka: KafkaSettings, group: str) -> int:
    """Offsets the group committed on shadow.comparisons, summed over its partitions."""
    topic = SHADOW_COMPARISONS.prefixed(kafka.topic_prefix).name
    consumer = Consumer(consumer_config(kafka, group))
    try:
        parts = [TopicPartition(topic, p) for p in range(SHADOW_COMPARISONS.partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_a_shadow_that_agrees_over_three_windows_is_promoted(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    shadow_store: ModelStore,
) -> None:
    make_topics(SHADOW_COMPARISONS, SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name, version = _model_with_shadow(shadow_store, rollout)
    t0 = now_ms()
    comparisons = [
        _comparison(name, version, t0, 0.97, 120),
        _comparison(name, version, t0 + 60_000, 0.99, 10),  # too few pairs: not evidence
        _comparison(name, "99", t0 + 60_000, 0.10, 500),  # another shadow's: ignored
        _comparison(name, version, t0 + 120_000, 0.98, 80),
        _comparison(name, version, t0 + 180_000, 0.96, 200),
    ]
    decisions, group = _run(kafka_settings, shadow_store, rollout, name, comparisons)
    assert [(d.action, d.version) for d in decisions] == [("promoted", version)]
    assert shadow_store.alias_version(name, "champion") == version
    assert rollout.read(name) == RolloutState(shadow_version=None, champion_version=version)
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "promoted" and event["champion_version"] == version
    assert event["evidence"]["from_shadow"] == 1.0
    assert event["evidence"]["min_agreement_rate"] == 0.96
    assert "shadow analysis passed" in event["reason"]
    analysis = ShadowAnalysisStore(redis_client).read(name)
    assert analysis is not None and (analysis.verdict, analysis.action) == ("pass", "promoted")
    assert [w.window_start for w in analysis.windows] == [t0, t0 + 120_000, t0 + 180_000]
    assert analysis.skipped_windows == 1
    run_id = shadow_store.run_id(name, version)
    assert run_id is not None
    assert shadow_store.activate().get_run(run_id).data.tags[TAG_DECISION] == "promote"
    assert _committed(kafka_settings, group) == len(comparisons)


def test_a_shadow_that_clearly_disagrees_is_stopped(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    shadow_store: ModelStore,
) -> None:
    make_topics(SHADOW_COMPARISONS, SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name, version = _model_with_shadow(shadow_store, rollout)
    t0 = now_ms()
    comparisons = [
        _comparison(name, version, t0 + i * 60_000, agreement, 100)
        for i, agreement in enumerate((0.55, 0.85, 0.60, 0.50, 0.40))  # 0.85: not a clear fail
    ]
    decisions, _ = _run(kafka_settings, shadow_store, rollout, name, comparisons)
    assert [(d.action, d.version) for d in decisions] == [("stopped", version)]
    assert decisions[0].verdict.evidence["window_start"] == t0 + 4 * 60_000
    assert rollout.read(name) is None  # the shadow was all of its rollout state
    assert shadow_store.alias_version(name, "champion") == "1"
    analysis = ShadowAnalysisStore(redis_client).read(name)
    assert analysis is not None and (analysis.verdict, analysis.action) == ("fail", "stopped")
    run_id = shadow_store.run_id(name, version)
    assert run_id is not None
    tags = shadow_store.activate().get_run(run_id).data.tags
    assert (
        tags[TAG_DECISION] == "stop"
        and "agree < floor 0.8" in tags["driftline.shadow_decision_reason"]
    )


def test_without_auto_the_verdict_is_served_and_the_shadow_stays(
    kafka_settings: KafkaSettings,
    redis_client: redis.Redis,
    redis_url: str,
    shadow_store: ModelStore,
    tmp_path: Path,
) -> None:
    """The default: verdicts are recorded for ``GET /analysis/{model}/shadow``, not acted on;
    ``GET /models`` names the shadow serving mirrors to."""
    rollout = RolloutStore(redis_client)
    name, version = _model_with_shadow(shadow_store, rollout)
    config = ServingConfig(
        serving=ServingSettings(model_name=name, publish_events=False, rollout_poll_s=0.1),
        admin=AdminSettings(tokens=SecretStr("shadow-token")),
        kafka=kafka_settings,
        data=DataSettings(data_dir=tmp_path),
        store=shadow_store,
        redis=RedisSettings(url=SecretStr(redis_url)),
    )
    controller = ShadowController(ShadowAnalysisSettings(), kafka_settings, rollout, shadow_store)
    with TestClient(create_app(config)) as client:
        assert client.get("/analysis/no-such-model/shadow").json()["error"] == "unknown_model"
        waiting = client.get(f"/analysis/{name}/shadow").json()
        assert waiting["verdict"] == "inconclusive" and waiting["shadow_version"] == version
        assert "no window judged yet" in waiting["reason"]
        t0 = now_ms()
        for i in range(3):
            assert controller.observe(SingleObjectCodec().decode(
                _comparison(name, version, t0 + i * 60_000, 0.99, 100)
            ).value) is None  # fmt: skip
        answer = client.get(f"/analysis/{name}/shadow")
        assert answer.status_code == 200
        body = answer.json()
        assert (body["verdict"], body["action"], body["auto"]) == ("pass", None, False)
        assert body["windows_passed"] == 3 and body["shadow_active"] is True
        assert body["windows"][0]["agreement_rate"] == 0.99
        assert body["thresholds"]["min_agreement"] == 0.95
        assert wait_for(
            lambda: (
                client.get("/models").json()["models"][0]["rollout"]["shadow_version"] == version
            ),
            30,
        )
    assert (rollout.read(name) or RolloutState()).shadow_version == version
    assert shadow_store.alias_version(name, "champion") == "1"
    rollout.write_shadow(name, None)
    with TestClient(create_app(config)) as client:
        stale = client.get(f"/analysis/{name}/shadow").json()
        assert stale["verdict"] == "pass" and stale["shadow_active"] is False
