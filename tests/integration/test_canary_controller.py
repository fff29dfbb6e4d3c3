"""The canary controller on the embedded broker, a real redis-server and a sqlite MLflow."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import redis
from confluent_kafka import Producer

from retrain.canary_controller import CanaryController, CanaryDecision, CanaryLoop, StepState
from retrain.canary_step_context import StepContext
from retrain.settings import CanaryAnalysisSettings
from retrain.training import train_and_register
from schemas.catalog import SLO_WINDOW
from schemas.codec import SingleObjectCodec
from schemas.events import now_ms
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, MODEL_DEPLOYMENTS, SLO_WINDOWS
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.retrain_helpers import WorkerThread, records_on, wait_for
from tests.records_factory import samples


@pytest.fixture(scope="module")
def canary_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStore]:
    """Per test model names; each gets a champion (v1) and a challenger (v2)."""
    yield ModelStore.embedded(tmp_path_factory.mktemp("canary-mlflow"))


def _model(store: ModelStore, rollout: RolloutStore) -> str:
    name = f"canary-{uuid.uuid4().hex[:6]}"
    train_and_register(store, name)
    candidate = train_and_register(store, name, alias="challenger", parameters={"C": 0.5})
    rollout.write_canary(name, candidate.version, 0.1)
    return name


def _window(model: str, variant: str, version: str, start: int, error_rate: float) -> bytes:
    record: dict[str, Any] = samples()["SloWindow"] | {
        "model_name": model, "model_version": version, "variant": variant,
        "window_start": start, "window_end": start + 60_000, "request_count": 100,
        "error_rate": error_rate, "server_error_count": int(error_rate * 100),
        "client_error_count": 0, "latency_p99_ms": 20.0,
    }  # fmt: skip
    return SingleObjectCodec().encode(SLO_WINDOW, record)


def _run(
    kafka: KafkaSettings,
    store: ModelStore,
    rollout: RolloutStore,
    windows: list[bytes],
    model: str,
    until: Callable[[list[CanaryDecision]], bool],
    group: str | None = None,
    seen: list[int] | None = None,
) -> list[CanaryDecision]:
    """Produce ``windows``, then run a controller (consumer ``group``, a new one by default)
    until ``until``; ``seen`` collects the window starts it has judged."""
    producer = Producer(producer_config(kafka))
    topic = SLO_WINDOWS.prefixed(kafka.topic_prefix).name
    for value in windows:
        producer.produce(topic, value, key=model.encode())
    assert producer.flush(30) == 0
    group = group or f"canary-{uuid.uuid4().hex[:6]}"
    settings = CanaryAnalysisSettings(group_id=group, poll_timeout_s=0.2)
    decisions: list[CanaryDecision] = []
    controller = CanaryController(settings, kafka, rollout, store)
    if seen is not None:
        judge = controller.observe

        def observe(record: Mapping[str, Any]) -> CanaryDecision | None:
            decision = judge(record)
            seen.append(int(record["window_start"]))
            return decision

        controller.observe = observe  # type: ignore[method-assign]
    loop = CanaryLoop(controller, decisions.append)
    with WorkerThread(loop) as running:
        assert wait_for(lambda: until(decisions) or running.error is not None)
    assert running.error is None
    return decisions


def test_a_healthy_canary_steps_up_and_is_promoted(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    canary_store: ModelStore,
) -> None:
    make_topics(SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name = _model(canary_store, rollout)
    version = canary_store.alias_version(name, "challenger")
    assert version is not None
    t0 = now_ms() + 60_000  # after every step the controller takes: all counted in order
    windows = []
    for i in range(9):  # three steps of three window pairs
        start = t0 + i * 60_000
        windows += [
            _window(name, "canary", version, start, 0.0),
            _window(name, "baseline", "1", start, 0.0),
        ]
    decisions = _run(kafka_settings, canary_store, rollout, windows, name, lambda d: len(d) >= 3)
    assert [(d.action, d.share) for d in decisions] == [
        ("canary_step", 0.5),
        ("canary_step", 1.0),
        ("promoted", 1.0),
    ]
    assert canary_store.alias_version(name, "champion") == version
    state = rollout.read(name)
    assert state is not None and state.canary_version is None and state.champion_version == version
    events = records_on(kafka_settings, MODEL_DEPLOYMENTS, 3)
    assert [e["action"] for e in events] == ["canary_step", "canary_step", "promoted"]
    assert [e["canary_share"] for e in events[:2]] == [0.5, 1.0]
    assert events[2]["evidence"]["windows_passed"] == 3.0


def test_a_canary_that_degrades_is_rolled_back_at_the_first_bad_window(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    canary_store: ModelStore,
) -> None:
    make_topics(SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name = _model(canary_store, rollout)
    version = canary_store.alias_version(name, "challenger")
    assert version is not None
    t0 = now_ms()
    windows = [
        _window(name, "canary", version, t0, 0.0), _window(name, "baseline", "1", t0, 0.0),
        _window(name, "canary", version, t0 + 60_000, 0.2),  # injected errors
        _window(name, "baseline", "1", t0 + 60_000, 0.0),
    ]  # fmt: skip
    decisions = _run(kafka_settings, canary_store, rollout, windows, name, lambda d: bool(d))
    assert [(d.action, d.version) for d in decisions] == [("rolled_back", version)]
    assert rollout.read(name) == RolloutState(None, 0.0)
    assert canary_store.alias_version(name, "champion") == "1"
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 1)
    assert event["action"] == "rolled_back" and "canary error rate 0.2000" in event["reason"]
    assert event["evidence"]["canary_error_rate"] == 0.2


def test_a_window_that_always_fails_is_dead_lettered_and_the_next_ones_decide(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    canary_store: ModelStore,
) -> None:
    """A bug on one SloWindow (not a dependency being away) must not stall the partition."""
    make_topics(SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name = _model(canary_store, rollout)
    version = canary_store.alias_version(name, "challenger")
    assert version is not None
    t0 = now_ms()
    poison_start = t0 - 60_000
    producer = Producer(producer_config(kafka_settings))
    topic = SLO_WINDOWS.prefixed(kafka_settings.topic_prefix).name
    for value in (
        _window(name, "canary", version, poison_start, 0.0),
        _window(name, "canary", version, t0, 0.2), _window(name, "baseline", "1", t0, 0.0),
    ):  # fmt: skip
        producer.produce(topic, value, key=name.encode())
    assert producer.flush(30) == 0
    settings = CanaryAnalysisSettings(
        group_id=f"canary-{uuid.uuid4().hex[:6]}", poll_timeout_s=0.2, max_attempts=3
    )
    controller = CanaryController(settings, kafka_settings, rollout, canary_store)
    real_observe = controller.observe
    attempts: list[int] = []

    def observe(record: Mapping[str, Any]) -> CanaryDecision | None:
        attempts.append(int(record["window_start"]))
        if record["window_start"] == poison_start:
            raise ValueError("a bug no retry can fix")
        return real_observe(record)

    controller.observe = observe  # type: ignore[method-assign]
    decisions: list[CanaryDecision] = []
    loop = CanaryLoop(controller, decisions.append, retry_backoff_s=0.05)
    with WorkerThread(loop) as running:
        assert wait_for(lambda: bool(decisions) or running.error is not None)
    assert running.error is None
    assert [d.action for d in decisions] == ["rolled_back"]
    assert attempts == [poison_start] * 3 + [t0, t0] and loop.dead_lettered == 1
    dead_topic = DEAD_LETTERS.prefixed(kafka_settings.topic_prefix).name
    consumer = assigned_consumer(kafka_settings, dead_topic, 1, f"t-{uuid.uuid4().hex[:8]}")
    try:
        (dead,) = read_all(consumer, 1, timeout_s=30)
    finally:
        consumer.close()
    headers = dict(dead.headers() or [])  # type: ignore[attr-defined]
    assert headers["driftline.dlq.reason"] == b"processing_failed"
    assert headers["driftline.dlq.detail"].startswith(b"ValueError: a bug no retry can fix")


@pytest.mark.parametrize(
    ("canary_error_rate", "expected"), [(0.0, "promoted"), (0.2, "rolled_back")]
)
def test_a_controller_restarted_at_the_full_share_still_decides(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: redis.Redis,
    canary_store: ModelStore,
    canary_error_rate: float,
    expected: str,
) -> None:
    """At 100 % the baseline serves nothing, so the canary is judged against the previous
    step's baseline. That reference lived only in the controller's memory, and the 50 %
    step's windows are committed: a restarted controller waited for ever ("a controller
    restarted at 100 % waits"). It must promote (or roll back) on the same evidence."""
    make_topics(SLO_WINDOWS, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name = _model(canary_store, rollout)
    version = canary_store.alias_version(name, "challenger")
    assert version is not None
    group = f"canary-{uuid.uuid4().hex[:6]}"
    t0 = now_ms() + 60_000
    before = []
    for i in range(6):  # the 10 % and 50 % steps; the newest baseline window is distinct
        start = t0 + i * 60_000
        before += [
            _window(name, "canary", version, start, 0.0),
            _window(name, "baseline", "1", start, 0.005 if i == 5 else 0.0),
        ]
    first = _run(kafka_settings, canary_store, rollout, before, name, lambda d: len(d) >= 2, group)
    assert [(d.action, d.share) for d in first] == [("canary_step", 0.5), ("canary_step", 1.0)]
    # the first controller is stopped; only the canary serves now
    full = [t0 + i * 60_000 for i in range(6, 9)]
    seen: list[int] = []
    second = _run(
        kafka_settings, canary_store, rollout,
        [_window(name, "canary", version, start, canary_error_rate) for start in full],
        name, lambda d: bool(d) or set(full) <= set(seen), group, seen,
    )  # fmt: skip
    assert [(d.action, d.version) for d in second] == [(expected, version)]
    (event,) = records_on(kafka_settings, MODEL_DEPLOYMENTS, 3)[2:]
    assert event["action"] == expected
    assert event["evidence"]["baseline_error_rate"] == 0.005  # the 50 % step's newest window


def test_a_step_context_never_outlives_its_step(
    kafka_settings: KafkaSettings, redis_client: redis.Redis, canary_store: ModelStore
) -> None:
    """Any other write of the canary fields (admin, rollback, promotion) deletes the
    controller's record, and an unreadable one leaves the step bare instead of crashing."""
    rollout = RolloutStore(redis_client)
    name = f"ctx-{uuid.uuid4().hex[:6]}"
    context = StepContext(version="2", share=1.0, since_ms=5, previous_baseline=None)
    other_writers: list[Callable[[], None]] = [
        lambda: rollout.write_canary(name, "2", 1.0),  # POST /admin/canary, even the same
        lambda: rollout.write_promotion(name, "2"),
        lambda: rollout.write(name, RolloutState("2", 1.0)),
    ]
    for other_writer in other_writers:
        rollout.write_canary(name, "2", 1.0, context.encode())
        assert rollout.read_step_context(name) == context.encode()
        other_writer()
        assert rollout.read_step_context(name) is None
    rollout.write_canary(name, "2", 1.0, "{not json")
    settings = CanaryAnalysisSettings(group_id="unused")
    step = CanaryController(settings, kafka_settings, rollout, canary_store)._step(name)
    assert step == StepState("2", 1.0, None)
