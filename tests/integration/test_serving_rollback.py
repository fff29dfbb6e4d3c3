"""Rollback: a dry run changes nothing; --confirm clears the canary and records it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from typer.testing import CliRunner

from driftline.cli import app
from driftline.ports import free_port
from schemas.codec import SingleObjectCodec
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import MODEL_DEPLOYMENTS
from serving.settings import DEFAULT_MODEL_NAME as MODEL
from tests.integration.conftest import assigned_consumer, read_all


def _env(kafka: KafkaSettings, redis_url: str, store: ModelStore) -> dict[str, str]:
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "DRIFTLINE_REDIS_URL": redis_url,
        "MLFLOW_TRACKING_URI": store.tracking_uri,
    }
    env.pop("DRIFTLINE_SCHEMA_REGISTRY_URL", None)
    return env


def test_dry_run_then_confirmed_rollback(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    serving_store: ModelStore,
    tmp_path: Path,
) -> None:
    (topic,) = make_topics(MODEL_DEPLOYMENTS)
    rollout = RolloutStore(redis_client)
    rollout.write(MODEL, RolloutState("2", 0.3))
    env = _env(kafka_settings, redis_url, serving_store)

    dry = subprocess.run(
        [sys.executable, "-m", "serving.rollback"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "canary version 2 at share 0.3" in dry.stdout and "nothing changed" in dry.stdout
    assert rollout.read(MODEL) == RolloutState("2", 0.3)

    result = CliRunner().invoke(app, ["rollback", "--confirm", "--reason", "canary errors"],
                                env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rolled back" in result.output
    assert rollout.read(MODEL) == RolloutState(None, 0.0)

    consumer = assigned_consumer(kafka_settings, topic, 1, f"rb-{uuid.uuid4().hex[:6]}")
    (message,) = read_all(consumer, 1)
    consumer.close()
    event = SingleObjectCodec().decode(message.value()).value  # type: ignore[attr-defined]
    assert message.key() == MODEL.encode()  # type: ignore[attr-defined]
    assert (event["action"], event["reason"], event["canary_share"]) == (
        "rolled_back", "canary errors", 0.0,
    )  # fmt: skip
    assert event["champion_version"] == serving_store.alias_version(MODEL, "champion")
    assert event["evidence"] == {"canary_share_before": 0.3}


def test_a_rollback_with_kafka_down_says_traffic_moved_and_how_to_record_it(
    redis_url: str, redis_client: redis.Redis, serving_store: ModelStore
) -> None:
    """Redis is written first, so traffic is on the champion although the DeploymentEvent
    could not be published: the message must say so (not "incomplete") and exit non-zero."""
    rollout = RolloutStore(redis_client)
    rollout.write(MODEL, RolloutState("2", 0.3))
    down = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="")
    env = {**_env(down, redis_url, serving_store), "COLUMNS": "200",
           "DRIFTLINE_KAFKA_PRODUCER_OVERRIDES": '{"message.timeout.ms": 2000}'}  # fmt: skip
    result = CliRunner().invoke(
        app, ["rollback", "--confirm", "--reason", "canary errors"], env=env
    )
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    champion = serving_store.alias_version(MODEL, "champion")
    assert f"all traffic of {MODEL} now goes to champion version {champion}" in said, said
    assert "canary version 2 (share 0.3) no longer serves" in said, said
    assert "the DeploymentEvent (rolled_back) was NOT published to model.deployments" in said
    assert f"driftline rollback --model {MODEL} --confirm --reason 'canary errors'" in said
    assert "incomplete" not in said
    assert rollout.read(MODEL) == RolloutState(None, 0.0)  # what the message says is true
