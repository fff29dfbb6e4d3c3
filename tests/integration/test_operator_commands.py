"""The operator commands on a running local stack: validate-models, backup/restore, health.

One embedded stack (broker, Redis, MLflow, serving, processors, Alertmanager and
Prometheus when installed) serves the whole module; the tests run in file order and the
last one stops a component. Commands run through the CLI with the environment `make up`
prints (:meth:`LocalStack.operator_env`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import mlflow.sklearn
import pytest
import redis
from typer.testing import CliRunner, Result

from driftline.cli import app as cli
from driftline.embedded import redis_process
from driftline.ports import LOOPBACK, free_port
from driftline.processes import ManagedProcess
from driftline.settings import StackSettings
from driftline.stack import LocalStack
from retrain.drift_fixtures import drift_fixtures
from retrain.training import build_pipeline
from schemas.breast_cancer import DEFAULT_MODEL_NAME, load_split
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings
from stream.settings import DriftProcessorSettings, FeatureProcessorSettings, SloSettings

MODEL = DEFAULT_MODEL_NAME
REFERENCE_ID = "ops-reference"
#: Variables that would make the stack use external parts or fixed ports.
_OUTSIDE = (
    "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_REDIS_URL", "MLFLOW_TRACKING_URI",
    "DRIFTLINE_DATA_DIR", "DRIFTLINE_ALERTMANAGER_URL", "DRIFTLINE_PROMETHEUS_URL",
    "DRIFTLINE_KAFKA_TOPIC_PREFIX",
)  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack on free ports, as `make up` starts it (baseline trained on start)."""
    with pytest.MonkeyPatch.context() as patch:
        for variable in _OUTSIDE:
            patch.delenv(variable, raising=False)
        local = LocalStack(
            stack=StackSettings(
                data_dir=tmp_path_factory.mktemp("ops-stack"),
                embedded_broker_port=0,
                embedded_redis_port=0,
                embedded_alertmanager_port=0,
                embedded_prometheus_port=0,
            ),
            kafka=KafkaSettings(),
            redis=RedisSettings(),
            serving=ServingSettings(port=0),
            drift=DriftProcessorSettings(metrics_port=0),
            slo=SloSettings(metrics_port=0),
            features=FeatureProcessorSettings(metrics_port=0),
            alerting=AlertingSettings(metrics_port=0),
        )
        with local:
            yield local


def run(env: dict[str, str], *args: str) -> Result:
    """``driftline ARGS`` in this process, as from a shell with ``env`` exported.

    MLflow's ``set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; a shell running
    the command would not have it, so it is removed for the call.
    """
    return CliRunner().invoke(cli, list(args), env={**env, "MLFLOW_TRACKING_URI": None})


def test_validate_models_passes_the_baseline_and_fails_a_bad_shadow(stack: LocalStack) -> None:
    env = stack.operator_env()
    passed = run(env, "validate-models")
    assert passed.exit_code == 0, passed.output
    assert f"PASS {MODEL} champion version {stack.champion_version}: accuracy" in passed.output

    # A deliberately bad version (labels flipped) served as the shadow.
    store = ModelStore.embedded(stack.stack.data_dir)
    split = load_split()
    bad = build_pipeline().fit(split.x_train, 1 - split.y_train)
    with mlflow.start_run(experiment_id=store.experiment_id(), run_name="ops-bad"):
        info = mlflow.sklearn.log_model(bad, name="model", registered_model_name=MODEL)
    bad_version = str(info.registered_model_version)
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    rollouts = RolloutStore(client)
    rollouts.write_shadow(MODEL, bad_version)
    try:
        failed = run(env, "validate-models")
        assert failed.exit_code == 1, failed.output
        lines = failed.output.splitlines()
        assert any(line.startswith(f"PASS {MODEL} champion version ") for line in lines), lines
        shadow = [line for line in lines if f"{MODEL} shadow version {bad_version}" in line]
        assert len(shadow) == 1 and shadow[0].startswith("FAIL"), lines
        assert "holdout accuracy" in shadow[0] and "below the floor 0.9" in shadow[0]
        assert "regresses more than 0.02 from the champion's" in shadow[0]
    finally:
        rollouts.write_shadow(MODEL, None)
        client.close()


def test_validate_models_names_an_unknown_model(stack: LocalStack) -> None:
    result = run(stack.operator_env(), "validate-models", "--model", "breast-cancer-clasifier")
    assert result.exit_code == 1, result.output
    assert "unknown model 'breast-cancer-clasifier'" in result.output
    assert f"holds {MODEL}" in result.output
    assert "no served model" not in result.output


@pytest.fixture(scope="module")
def backed_up(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A registered reference, rollout state, answers of the live stack, then a backup."""
    env = stack.operator_env()
    reference, current = drift_fixtures()
    ref_file = tmp_path_factory.mktemp("ops-ref") / "reference.csv"
    reference.head(300).to_csv(ref_file, index=False)
    added = run(env, "reference", "add", REFERENCE_ID, str(ref_file))
    assert added.exit_code == 0, added.output
    client = redis.Redis.from_url(env["DRIFTLINE_REDIS_URL"])
    RolloutStore(client).write_promotion(MODEL, str(stack.champion_version))
    rollout = client.hgetall(f"driftline:rollout:{MODEL}")
    client.close()
    serving = f"http://{LOOPBACK}:{env['DRIFTLINE_SERVING_PORT']}"
    answers = _answers(serving, current.head(40).to_dict(orient="records"))
    dest = tmp_path_factory.mktemp("ops-backup") / "backup"
    made = run(env, "backup", "--to", str(dest))
    assert made.exit_code == 0, made.output
    return {"dir": dest, "answers": answers, "rollout": rollout, "current": current,
            "source": stack.stack.data_dir.resolve()}  # fmt: skip


def _answers(base: str, current: list[dict[str, float]]) -> dict[str, Any]:
    """What serving answers: model version, predictions, references and a drift result."""
    split = load_split()
    rows = [{"features": [float(v) for v in row]} for row in split.x_validation[:20]]
    predicted = httpx.post(f"{base}/predict", json={"instances": rows}, timeout=30)
    assert predicted.status_code == 200, predicted.text
    detect = {"reference_data_id": REFERENCE_ID, "current_data": current}
    drift = httpx.post(f"{base}/drift/detect", json=detect, timeout=30)
    assert drift.status_code == 200, drift.text
    ready = httpx.get(f"{base}/ready", timeout=10).json()
    references = httpx.get(f"{base}/references", timeout=10).json()["ids"]
    return {
        "model": ready["model"],
        "predictions": [
            (p["prediction"], p["probability"], p["model_version"], p["variant"])
            for p in predicted.json()["predictions"]
        ],
        "references": references,
        "drift": drift.json(),
    }


@pytest.fixture
def empty_redis(tmp_path: Path) -> Iterator[str]:
    """A fresh redis-server of this test's own."""
    port = free_port()
    proc = redis_process(port, tmp_path / "redis")
    proc.start()
    try:
        proc.wait_healthy(30)
        yield f"redis://{LOOPBACK}:{port}/0"
    finally:
        proc.stop()


def test_restore_into_an_empty_stack_serves_the_same_champion_and_references(
    stack: LocalStack,
    backed_up: dict[str, Any],
    empty_redis: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir = tmp_path / "restored"
    env = {**stack.operator_env(), "DRIFTLINE_DATA_DIR": str(data_dir),
           "DRIFTLINE_REDIS_URL": empty_redis}  # fmt: skip
    restored = run(env, "restore", str(backed_up["dir"]))
    assert restored.exit_code == 0, restored.output
    # The artifact paths moved to the new data dir: nothing points at the old one.
    assert str(backed_up["source"]).encode() not in (data_dir / "mlflow.db").read_bytes()
    client = redis.Redis.from_url(empty_redis)
    assert client.hgetall(f"driftline:rollout:{MODEL}") == backed_up["rollout"]
    client.close()

    port = free_port()
    serving = ManagedProcess(
        name="restored-serving",
        argv=[sys.executable, "-m", "serving"],
        log_path=tmp_path / "serving.log",
        health=lambda: _ready(f"http://{LOOPBACK}:{port}"),
        env={
            **env,
            "DRIFTLINE_SERVING_PORT": str(port),
            "DRIFTLINE_SERVING_HOST": LOOPBACK,
            "DRIFTLINE_SERVING_PUBLISH_EVENTS": "false",
        },
    )
    # MLflow exported the original store's URI into this process; the restored serving
    # must find its store from DRIFTLINE_DATA_DIR alone, as on a fresh machine.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    serving.start()
    try:
        serving.wait_healthy(120)
        current = backed_up["current"].head(40).to_dict(orient="records")
        answers = _answers(f"http://{LOOPBACK}:{port}", current)
    finally:
        serving.stop()
    assert answers == backed_up["answers"]
    assert REFERENCE_ID in answers["references"]
    assert answers["model"]["version"] == stack.champion_version

    # Restoring again: the target is no longer empty.
    again = run(env, "restore", str(backed_up["dir"]))
    assert again.exit_code == 1
    assert "the target is not empty" in again.output and "--force" in again.output
    forced = run(env, "restore", str(backed_up["dir"]), "--force")
    assert forced.exit_code == 0, forced.output


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_restore_refuses_a_corrupt_backup_with_the_file_named(
    stack: LocalStack, backed_up: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(backed_up["dir"], copy)
    env = {**stack.operator_env(), "DRIFTLINE_DATA_DIR": str(tmp_path / "target")}
    db = copy / "mlflow" / "mlflow.db"
    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    db.write_bytes(bytes(data))
    corrupt = run(env, "restore", str(copy), "--force")
    assert corrupt.exit_code == 1
    assert "mlflow/mlflow.db has SHA-256" in corrupt.output, corrupt.output
    assert not (tmp_path / "target" / "mlflow.db").exists(), "nothing is written"

    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    broken = run(env, "restore", str(copy))
    assert broken.exit_code == 1
    assert "is not a valid manifest: files: Field required" in broken.output, broken.output


def test_with_an_mlflow_server_the_backup_holds_the_inventory_and_restores_aliases(
    stack: LocalStack, empty_redis: str, tmp_path: Path
) -> None:
    """A tracking URI outside the data dir is a server: no store files, aliases come back."""
    store = ModelStore.embedded(stack.stack.data_dir)
    client = store.activate()
    champion = str(stack.champion_version)
    client.set_registered_model_alias(MODEL, "ops-kept", champion)
    env = {**stack.operator_env(), "DRIFTLINE_DATA_DIR": str(tmp_path / "a")}
    server = {**env, "MLFLOW_TRACKING_URI": store.tracking_uri}
    dest = tmp_path / "server-backup"
    made = CliRunner().invoke(cli, ["backup", "--to", str(dest)], env=server)
    assert made.exit_code == 0, made.output
    assert "MLflow server store" in made.output
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["mlflow"]["kind"] == "server"
    assert not any(name.startswith("mlflow/mlruns") for name in manifest["files"])
    assert "mlflow/mlflow.db" not in manifest["files"]

    client.delete_registered_model_alias(MODEL, "ops-kept")
    # Into the embedded store: refused, with what to do.
    embedded = run({**env, "DRIFTLINE_REDIS_URL": empty_redis}, "restore", str(dest))
    assert embedded.exit_code == 1
    assert "holds only the registry inventory of the MLflow server" in embedded.output
    target = {**server, "DRIFTLINE_DATA_DIR": str(tmp_path / "b"),
              "DRIFTLINE_REDIS_URL": empty_redis}  # fmt: skip
    restored = CliRunner().invoke(cli, ["restore", str(dest)], env=target)
    assert restored.exit_code == 0, restored.output
    assert store.alias_version(MODEL, "ops-kept") == champion
    client.delete_registered_model_alias(MODEL, "ops-kept")


def test_health_reports_every_component_then_the_stopped_one(stack: LocalStack) -> None:
    env = stack.operator_env()
    healthy = run(env, "health", "--json", "--timeout", "5")
    assert healthy.exit_code == 0, healthy.output
    states = {r["component"]: r for r in map(json.loads, healthy.output.splitlines())}
    running = {"kafka", "redis", "mlflow", "serving", "drift-processor", "slo-processor",
               "features", "shadow-comparison", "alert-evaluator", "retrain-worker",
               "canary-controller"}  # fmt: skip
    started = {ep.name for ep in stack.endpoints}
    running |= {"alertmanager", "prometheus"} & started
    assert {n for n, r in states.items() if r["state"] == "up"} == running, states
    for name in {"alertmanager", "prometheus"} - started:
        assert states[name]["state"] == "not configured", states[name]
    assert f"{MODEL}@champion is version" in states["mlflow"]["detail"]
    for consumer in ("retrain-worker", "canary-controller"):  # metrics and group, both
        assert "/metrics ok; group driftline-" in states[consumer]["detail"], states[consumer]

    slo = next(p for p in stack._processes if p.name == "slo-processor")
    slo.stop()
    down = run(env, "health")
    assert down.exit_code == 1, down.output
    lines = down.output.splitlines()
    assert [line for line in lines if line.startswith("down")] == [
        line for line in lines if " slo-processor " in line
    ], lines
    assert sum(line.startswith("up ") for line in lines) == len(running) - 1, lines
    assert lines[-1] == "DOWN: slo-processor"
