"""The canary controller's accuracy rule on the embedded broker, a real redis-server and a
sqlite MLflow: DriftScores on ``drift.scores`` carry each variant's accuracy; a canary as
accurate as the baseline steps up with the accuracies as evidence, one whose realised
accuracy falls too far below is rolled back even while its SLO windows are healthy."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from retrain.canary_controller import CanaryController, CanaryDecision, CanaryLoop
from retrain.settings import CanaryAnalysisSettings
from retrain.training import train_and_register
from schemas.catalog import DRIFT_SCORE, SLO_WINDOW
from schemas.codec import SingleObjectCodec
from schemas.events import now_ms
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, MODEL_DEPLOYMENTS, SLO_WINDOWS
from tests.integration.retrain_helpers import WorkerThread, records_on, wait_for
from tests.records_factory import samples

pytestmark = pytest.mark.integration
CODEC = SingleObjectCodec()


def _slo(model: str, variant: str, version: str, start: int) -> bytes:
    record: dict[str, Any] = samples()["SloWindow"] | {
        "model_name": model, "model_version": version, "variant": variant,
        "window_start": start, "window_end": start + 60_000, "request_count": 100,
        "error_rate": 0.0, "server_error_count": 0, "client_error_count": 0,
        "latency_p99_ms": 20.0,
    }  # fmt: skip
    return CODEC.encode(SLO_WINDOW, record)


def _score(model: str, version: str, variant: str, start: int, labelled: int, acc: float) -> bytes:
    record = copy.deepcopy(samples()["DriftScore"])
    record.update(
        model_name=model, model_version=version, window_kind="tumbling", window_start=start,
        window_end=start + 60_000,
        performance=[{
            "variant": variant, "prediction_count": 2 * labelled, "estimated_accuracy": 0.95,
            "labelled_count": labelled, "accuracy": acc, "error_rate": 1 - acc,
        }],
    )  # fmt: skip
    return CODEC.encode(DRIFT_SCORE, record)


def _window(
    model: str, start: int, canary_accuracy: float, labelled: int = 60
) -> list[tuple[str, bytes]]:
    """One window of a canary (version 2) and its baseline (version 1): SLOs equal and
    healthy; ``labelled`` canary labels at ``canary_accuracy``, 300 baseline labels at 0.95."""
    return [
        (SLO_WINDOWS.name, _slo(model, "canary", "2", start)),
        (SLO_WINDOWS.name, _slo(model, "baseline", "1", start)),
        (DRIFT_SCORES.name, _score(model, "2", "canary", start, labelled, canary_accuracy)),
        (DRIFT_SCORES.name, _score(model, "1", "baseline", start, 300, 0.95)),
    ]


def test_accuracy_is_evidence_of_a_step_and_a_less_accurate_canary_is_rolled_back(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    make_topics(SLO_WINDOWS, DRIFT_SCORES, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    store = ModelStore.embedded(tmp_path_factory.mktemp("accuracy-mlflow"))
    rollout = RolloutStore(redis_client)
    name = f"acc-{uuid.uuid4().hex[:6]}"
    train_and_register(store, name)
    train_and_register(store, name, alias="challenger", parameters={"C": 0.5})
    rollout.write_canary(name, "2", 0.1)
    producer = Producer(producer_config(kafka_settings))

    def produce(records: list[tuple[str, bytes]]) -> None:
        for topic, value in records:
            producer.produce(kafka_settings.topic_prefix + topic, value, key=name.encode())
        assert producer.flush(30) == 0

    t0 = now_ms() + 60_000
    # Two windows of 60 labels each: the step needs both for 100 labels (required here, so
    # which topic the consumer reads first cannot decide the step without accuracy).
    produce(_window(name, t0, 0.96) + _window(name, t0 + 60_000, 0.94))
    settings = CanaryAnalysisSettings(
        group_id=f"acc-{uuid.uuid4().hex[:6]}", poll_timeout_s=0.2, windows=2,
        accuracy_required=True, accuracy_min_labelled=100, accuracy_max_decrease=0.05,
    )  # fmt: skip
    decisions: list[CanaryDecision] = []
    loop = CanaryLoop(CanaryController(settings, kafka_settings, rollout, store), decisions.append)
    with WorkerThread(loop) as running:
        assert wait_for(lambda: bool(decisions) or running.error is not None)
        assert [d.action for d in decisions] == ["canary_step"]
        produce(_window(name, t0 + 120_000, 0.60, labelled=150))  # next step: it got worse
        assert wait_for(lambda: len(decisions) >= 2 or running.error is not None)
    assert running.error is None
    assert [(d.action, d.version) for d in decisions] == [
        ("canary_step", "2"),
        ("rolled_back", "2"),
    ]
    assert rollout.read(name) == RolloutState(None, 0.0)
    step, rolled_back = records_on(kafka_settings, MODEL_DEPLOYMENTS, 2)
    assert step["evidence"]["canary_accuracy"] == pytest.approx(0.95)  # (0.96 + 0.94) / 2
    assert step["evidence"]["baseline_accuracy"] == pytest.approx(0.95)
    assert step["evidence"]["accuracy_samples"] == 120
    assert rolled_back["action"] == "rolled_back"
    assert "canary realised accuracy 0.6000 < baseline 0.9500 - 0.05" in rolled_back["reason"]
    assert rolled_back["evidence"]["canary_accuracy"] == pytest.approx(0.6)
    for action in ("canary_step", "rolled_back"):
        labels = {"model": name, "action": action}
        assert REGISTRY.get_sample_value("driftline_canary_decisions_total", labels) == 1
    assert REGISTRY.get_sample_value("driftline_canary_share", {"model": name}) == 0
