"""The operator's rollout commands on the embedded broker, a real redis-server and a sqlite
MLflow: ``driftline deploy`` starts a canary, ``driftline canary watch`` follows the canary
controller's decisions to the end (exit 0 promoted, 1 rolled back), and deploy, watch,
rollback and retrain refuse unknown models or versions."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from confluent_kafka import Producer
from typer.testing import CliRunner

from driftline.cli import app
from driftline.ports import free_port
from retrain.canary_controller import CanaryController, CanaryDecision, CanaryLoop
from retrain.settings import CanaryAnalysisSettings
from retrain.training import train_and_register
from schemas.catalog import SLO_WINDOW
from schemas.codec import SingleObjectCodec
from schemas.events import now_ms
from schemas.kafka_config import producer_config
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_SCORES, MODEL_DEPLOYMENTS, SLO_WINDOWS
from tests.integration.retrain_helpers import WorkerThread, records_on, wait_for
from tests.records_factory import samples


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStore]:
    yield ModelStore.embedded(tmp_path_factory.mktemp("canary-cli-mlflow"))


def _env(kafka: KafkaSettings, redis_url: str, store: ModelStore) -> dict[str, str]:
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "DRIFTLINE_REDIS_URL": redis_url,
        "MLFLOW_TRACKING_URI": store.tracking_uri,
        "COLUMNS": "200",
    }
    env.pop("DRIFTLINE_SCHEMA_REGISTRY_URL", None)
    return env


def _model_with_two_versions(store: ModelStore) -> str:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    train_and_register(store, name)  # version 1, champion
    train_and_register(store, name, alias="candidate", parameters={"C": 0.5})  # version 2
    return name


def _window(model: str, variant: str, version: str, start: int, error_rate: float) -> bytes:
    record: dict[str, Any] = samples()["SloWindow"] | {
        "model_name": model, "model_version": version, "variant": variant,
        "window_start": start, "window_end": start + 60_000, "request_count": 100,
        "error_rate": error_rate, "server_error_count": int(error_rate * 100),
        "client_error_count": 0, "latency_p99_ms": 20.0,
    }  # fmt: skip
    return SingleObjectCodec().encode(SLO_WINDOW, record)


def _deploy_and_watch(
    kafka: KafkaSettings, redis_url: str, store: ModelStore, rollout: RolloutStore
) -> tuple[str, subprocess.Popen[str], str]:
    """``deploy --version latest --canary 10``, then ``canary watch`` in its own process;
    returns the model, the watch process and the first line it printed."""
    name = _model_with_two_versions(store)
    env = _env(kafka, redis_url, store)
    deployed = CliRunner().invoke(
        app, ["deploy", "--model", name, "--version", "latest", "--canary", "10"], env=env
    )
    assert deployed.exit_code == 0, deployed.output
    assert "version 2 is the canary at 10 %" in deployed.output
    assert rollout.read(name) == RolloutState("2", 0.1)
    assert store.alias_version(name, "challenger") == "2"
    watch = subprocess.Popen(
        [sys.executable, "-m", "driftline", "canary", "watch", "--model", name, "--timeout", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watch.stdout is not None and watch.stderr is not None
    first = watch.stdout.readline()  # printed once the topic's end offsets are taken
    assert f"{name}: canary version 2 at 10%" in first, first + watch.stderr.read()
    return name, watch, first


def _produce_windows(kafka: KafkaSettings, name: str, error_rates: list[float]) -> None:
    """One canary/baseline SloWindow pair per rate, each after the one before (and after
    every step the controller takes: all counted in order)."""
    t0 = now_ms() + 60_000
    producer = Producer(producer_config(kafka))
    topic = SLO_WINDOWS.prefixed(kafka.topic_prefix).name
    for i, rate in enumerate(error_rates):
        start = t0 + i * 60_000
        for value in (
            _window(name, "canary", "2", start, rate),
            _window(name, "baseline", "1", start, 0.0),
        ):
            producer.produce(topic, value, key=name.encode())
    assert producer.flush(30) == 0


def test_deploy_then_watch_follows_every_step_to_promotion(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    cli_store: ModelStore,
) -> None:
    """Everything as separate processes: deploy, watch, and `driftline canary run`, whose
    /metrics on its DRIFTLINE_CANARY_METRICS_PORT then counts the decisions."""
    make_topics(SLO_WINDOWS, DRIFT_SCORES, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name, watch, first = _deploy_and_watch(kafka_settings, redis_url, cli_store, rollout)
    port = free_port()
    controller = subprocess.Popen(
        [sys.executable, "-m", "driftline", "canary", "run"],
        env=_env(kafka_settings, redis_url, cli_store) | {
            "DRIFTLINE_CANARY_GROUP_ID": f"canary-{uuid.uuid4().hex[:6]}",
            "DRIFTLINE_CANARY_WINDOWS": "1", "DRIFTLINE_CANARY_POLL_TIMEOUT_S": "0.2",
            "DRIFTLINE_CANARY_METRICS_PORT": str(port),
        },
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _produce_windows(kafka_settings, name, [0.0, 0.0, 0.0])
        out, err = watch.communicate(timeout=120)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        controller.terminate()
        controller.communicate(timeout=30)
    assert watch.returncode == 0, first + out + err
    lines = (first + out).splitlines()
    assert "canary_step: version 2 at 50%" in lines[1] and "canary_error_rate=0" in lines[1]
    assert "canary_step: version 2 at 100%" in lines[2]
    assert "promoted: version 2 is the champion" in lines[3] and "windows_passed=1" in lines[3]
    events = records_on(kafka_settings, MODEL_DEPLOYMENTS, 4)
    assert [e["action"] for e in events] == [
        "canary_started", "canary_step", "canary_step", "promoted",
    ]  # fmt: skip
    started = events[0]
    assert (started["model_name"], started["canary_version"], started["canary_share"]) == (
        name, "2", 0.1,
    )  # fmt: skip
    assert started["champion_version"] == "1"
    for action, count in (("canary_step", 2.0), ("promoted", 1.0)):
        sample = f'driftline_canary_decisions_total{{action="{action}",model="{name}"}} {count}'
        assert sample in metrics, metrics
    assert f'driftline_canary_share{{model="{name}"}} 0.0' in metrics


def test_watch_exits_non_zero_when_the_canary_is_rolled_back(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    cli_store: ModelStore,
) -> None:
    make_topics(SLO_WINDOWS, DRIFT_SCORES, MODEL_DEPLOYMENTS, DEAD_LETTERS)
    rollout = RolloutStore(redis_client)
    name, watch, first = _deploy_and_watch(kafka_settings, redis_url, cli_store, rollout)
    _produce_windows(kafka_settings, name, [0.3])
    settings = CanaryAnalysisSettings(
        group_id=f"canary-{uuid.uuid4().hex[:6]}", poll_timeout_s=0.2, windows=1
    )
    decisions: list[CanaryDecision] = []
    loop = CanaryLoop(CanaryController(settings, kafka_settings, rollout, cli_store),
                      decisions.append)  # fmt: skip
    with WorkerThread(loop) as running:
        assert wait_for(lambda: bool(decisions) or running.error is not None)
    assert running.error is None
    out, err = watch.communicate(timeout=60)
    assert [d.action for d in decisions] == ["rolled_back"]
    assert watch.returncode == 1, first + out + err
    assert "rolled_back (champion 1)" in out
    assert "canary error rate 0.3000" in out and "canary_error_rate=0.3" in out
    assert rollout.read(name) == RolloutState(None, 0.0)


def test_operator_commands_refuse_unknown_models_and_versions(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_url: str,
    redis_client: redis.Redis,
    cli_store: ModelStore,
    tmp_path: Path,
) -> None:
    make_topics(MODEL_DEPLOYMENTS)
    name = _model_with_two_versions(cli_store)
    env = _env(kafka_settings, redis_url, cli_store)
    runner = CliRunner()
    cases = {
        (
            "deploy",
            "--model",
            "no-such-model",
            "--version",
            "latest",
        ): "unknown model 'no-such-model'",
        (
            "deploy",
            "--model",
            name,
            "--version",
            "7",
        ): f"{name!r} has no version '7' (registered: 1, 2)",
        ("deploy", "--model", name, "--version", "1"): "version 1 of",  # the champion already
        ("rollback", "--model", "no-such-model", "--confirm"): "unknown model 'no-such-model'",
        ("retrain", "--model", "no-such-model", "--urgent"): "unknown model 'no-such-model'",
        ("canary", "watch", "--model", "no-such-model"): "unknown model 'no-such-model'",
    }
    for argv, message in cases.items():
        result = runner.invoke(app, list(argv), env=env)
        assert result.exit_code != 0, (argv, result.output)
        assert message in " ".join(result.output.split()), (argv, result.output)
    assert redis_client.keys("driftline:rollout:*") == []  # nothing was written
    assert cli_store.registered_models().count("no-such-model") == 0
    assert cli_store.alias_version(name, "challenger") is None
    # no canary in progress: watch says so and exits 2 at once
    idle = runner.invoke(app, ["canary", "watch", "--model", name], env=env)
    assert idle.exit_code == 2 and f"{name}: no canary in progress" in idle.output


def test_watch_with_the_broker_down_says_so_and_exits_2(
    kafka_settings: KafkaSettings, redis_url: str, cli_store: ModelStore
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    train_and_register(cli_store, name)
    down = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="")
    result = CliRunner().invoke(
        app, ["canary", "watch", "--model", name, "--timeout", "5"],
        env=_env(down, redis_url, cli_store),
    )  # fmt: skip
    assert result.exit_code == 2, result.output  # not 1: that says "rolled back"
    assert "cannot read model.deployments" in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception


def test_retrain_here_with_redis_down_names_it(
    kafka_settings: KafkaSettings, cli_store: ModelStore
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    train_and_register(cli_store, name)
    down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(
        app, ["retrain", "--model", name, "--urgent"], env=_env(kafka_settings, down, cli_store)
    )
    assert result.exit_code == 1, result.output
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in " ".join(result.output.split())
    assert "hunter2" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception


def test_deploy_with_redis_down_changes_nothing(
    kafka_settings: KafkaSettings, cli_store: ModelStore
) -> None:
    name = _model_with_two_versions(cli_store)
    down = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(
        app, ["deploy", "--model", name, "--version", "2", "--canary", "10"],
        env=_env(kafka_settings, down, cli_store),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in said and "nothing changed" in said
    assert "hunter2" not in result.output
    assert cli_store.alias_version(name, "challenger") is None  # the alias did not move


def test_deploy_with_kafka_down_says_the_canary_is_live_anyway(
    redis_url: str, redis_client: redis.Redis, cli_store: ModelStore
) -> None:
    name = _model_with_two_versions(cli_store)
    down = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="")
    env = {**_env(down, redis_url, cli_store),
           "DRIFTLINE_KAFKA_PRODUCER_OVERRIDES": '{"message.timeout.ms": 2000}'}  # fmt: skip
    try:
        result = CliRunner().invoke(
            app, ["deploy", "--model", name, "--version", "2", "--canary", "10"], env=env
        )
        assert result.exit_code == 1, result.output
        said = " ".join(result.output.split())
        assert "version 2 IS the canary at 10 %" in said, said
        assert "DeploymentEvent was not recorded" in said
        state = RolloutStore(redis_client).read(name)  # what the message says is true
        assert state is not None and state.canary_version == "2" and state.active
    finally:
        RolloutStore(redis_client).write_canary(name, None, 0.0)
