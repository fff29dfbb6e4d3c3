"""Fixtures shared by the event-contract integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from driftline.binaries import ALERTMANAGER_NAMES, optional_binary
from driftline.embedded import broker_process
from driftline.ports import LOOPBACK, free_port
from driftline.processes import ManagedProcess
from retrain.training import train_and_register
from schemas.admin import ensure_topics, make_admin
from schemas.kafka_config import consumer_config
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import TopicSpec
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig
from tests.integration.alerting_helpers import AlertmanagerServer


@pytest.fixture
def make_topics(kafka_settings: KafkaSettings) -> Callable[..., list[str]]:
    """Create the given declared topics under this test's prefix; return their names."""

    def make(*specs: TopicSpec) -> list[str]:
        prefixed = [spec.prefixed(kafka_settings.topic_prefix) for spec in specs]
        ensure_topics(make_admin(kafka_settings), prefixed)
        return [spec.name for spec in prefixed]

    return make


def assigned_consumer(settings: KafkaSettings, topic: str, partitions: int, group: str) -> Consumer:
    """A consumer assigned (no group join: faster) to every partition from the start."""
    consumer = Consumer(consumer_config(settings, group))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def read_all(consumer: Consumer, expected: int, timeout_s: float = 60.0) -> list[object]:
    """Consume until ``expected`` records arrived (or the bound on a broken run)."""
    import time

    got: list[object] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is None:
                got.append(msg)
    return got


# --- serving (issue 5) ----------------------------------------------------------------


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A real MLflow sqlite store with the baseline trained and aliased once per session."""
    store = ModelStore.embedded(tmp_path_factory.mktemp("mlflow"))
    train_and_register(store)
    return store


@pytest.fixture
def serving_config(
    serving_store: ModelStore, kafka_settings: KafkaSettings, tmp_path: Path
) -> Callable[..., ServingConfig]:
    """Build a ServingConfig on the session store and this test's broker and data dir.

    Keyword arguments override ServingSettings fields; ``kafka=`` replaces the broker;
    ``redis_url=`` turns canary routing on (off by default: no Redis is read).
    """

    def make(
        kafka: KafkaSettings | None = None, redis_url: str | None = None, **serving: Any
    ) -> ServingConfig:
        return ServingConfig(
            serving=ServingSettings(**serving),
            admin=AdminSettings(tokens=SecretStr(SERVING_ADMIN_TOKEN)),
            kafka=kafka or kafka_settings,
            data=DataSettings(data_dir=tmp_path),
            store=serving_store,
            redis=RedisSettings(url=SecretStr(redis_url)) if redis_url else None,
        )

    return make


SERVING_ADMIN_TOKEN = "integration-admin-token"
#: Headers of an authorised /admin call in the serving tests.
ADMIN_HEADERS = {"Authorization": f"Bearer {SERVING_ADMIN_TOKEN}"}


class RestartableBroker:
    """An embedded broker of this test's own, on a fixed port, that can stop and start.

    It keeps everything in memory: after a restart every topic must be created again.
    """

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self._proc: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._proc = broker_process(self.port, self.log_dir)
        self._proc.start()
        self._proc.wait_healthy(30)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    """A started :class:`RestartableBroker`, stopped after the test."""
    broker = RestartableBroker(tmp_path / "broker-logs")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# --- alerting (issue 7) ---------------------------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    """A real Alertmanager from the Debian package, started for this test."""
    binary = optional_binary(ALERTMANAGER_NAMES)
    if binary is None:
        pytest.skip(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    server = AlertmanagerServer(binary, tmp_path / "alertmanager")
    server.start()
    try:
        yield server
    finally:
        server.stop()
