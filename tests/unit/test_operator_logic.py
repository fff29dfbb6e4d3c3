"""Pure parts of the operator commands: probe outcomes, backup checks, artifact relocation."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from driftline.backup import MANIFEST, relocate_artifacts, verify_backup
from driftline.exceptions import CorruptBackupError
from driftline.health import Probe, ProbeFailed, run_probes
from driftline.validate_models import served_versions
from schemas.rollout_state import RolloutState


def test_probe_outcomes_and_order() -> None:
    def fails(_: float) -> str:
        raise ProbeFailed("connection refused")

    def crashes(_: float) -> str:
        raise RuntimeError("redis://u:secret@host:1 went away")

    probes = [
        Probe("a", "here", lambda t: f"ok within {t:g}"),
        Probe("b", "there", fails),
        Probe("c", "-", None, "X_URL is not set"),
        Probe("d", "elsewhere", lambda t: "never run"),
        Probe("e", "crash", crashes),
    ]
    results = run_probes(probes, 2.0, skip=frozenset({"d"}))
    assert [(r.name, r.state) for r in results] == [
        ("a", "up"), ("b", "down"), ("c", "not configured"), ("d", "skipped"), ("e", "down"),
    ]  # fmt: skip
    assert results[0].detail == "ok within 2"
    assert results[1].detail == "connection refused"
    assert results[2].detail == "X_URL is not set"
    assert "secret" not in results[4].detail and "RuntimeError" in results[4].detail


def test_relocate_rewrites_uris_and_paths_at_the_start_only(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER, artifact_uri VARCHAR(200), n INTEGER)")
        conn.execute("CREATE TABLE other (location TEXT)")
        conn.executemany(
            "INSERT INTO runs VALUES (?, ?, ?)",
            [(1, "file:///old/data/mlruns/1/artifacts", 5),
             (2, "s3://bucket/file:///old/data/mlruns", 6)],
        )  # fmt: skip
        conn.execute("INSERT INTO other VALUES ('/old/data/mlruns/models/m-1')")
    changed = relocate_artifacts(db, "file:///old/data/mlruns", "file:///new%20dir/mlruns")
    assert changed == 2
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT artifact_uri FROM runs ORDER BY id").fetchall()
        other = conn.execute("SELECT location FROM other").fetchone()
    assert runs == [("file:///new%20dir/mlruns/1/artifacts",),
                    ("s3://bucket/file:///old/data/mlruns",)]  # fmt: skip
    assert other == ("/new dir/mlruns/models/m-1",)


def test_verify_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CorruptBackupError, match=r"has no manifest\.json"):
        verify_backup(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(CorruptBackupError, match="is not a valid manifest"):
        verify_backup(tmp_path)
    manifest = {
        "format": "driftline-backup", "format_version": 1, "created_at": "now",
        "driftline_version": "0", "python_version": "3", "registered_models": 0,
        "model_versions": 0, "datasets": [], "rollout_models": [],
        "mlflow": {"kind": "server", "tracking_uri": "http://x", "mlflow_version": "3"},
        "files": {"redis/rollout.json": {"sha256": "0" * 64, "bytes": 2}},
    }  # fmt: skip
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorruptBackupError, match=r"redis/rollout\.json is listed .* but missing"):
        verify_backup(tmp_path)
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "rollout.json").write_text("{}")
    with pytest.raises(CorruptBackupError, match=r"rollout\.json has SHA-256 .* the manifest says"):
        verify_backup(tmp_path)
    manifest["format_version"] = 99
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorruptBackupError, match="format version 99"):
        verify_backup(tmp_path)


class _Aliases:
    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases

    def alias_version(self, model: str, alias: str) -> str | None:
        return self.aliases.get(model)


def test_served_versions_follow_rollout_state() -> None:
    store = _Aliases({"a": "1", "b": "4", "c": "2"})
    rollouts = {
        "a": RolloutState(canary_version="2", canary_share=0.1, shadow_version="3"),
        "b": RolloutState(canary_version="5", canary_share=0.0, champion_version="6"),
        "c": None,
    }
    served = served_versions(store, "champion", rollouts, ["a", "b", "c", "none"])  # type: ignore[arg-type]
    assert [(s.model, s.role, s.version) for s in served] == [
        ("a", "champion", "1"), ("a", "canary", "2"), ("a", "shadow", "3"),
        ("b", "champion", "6"),  # a promotion's version wins; a 0 % canary is not served
        ("c", "champion", "2"),
    ]  # fmt: skip


def test_operator_env_names_every_address_the_stack_chose(tmp_path: Path) -> None:
    """`make up` prints these: the operator commands then find ports that were busy."""
    from pydantic import SecretStr

    from driftline.settings import StackSettings
    from driftline.stack import Endpoint, LocalStack
    from schemas.settings import KafkaSettings, RedisSettings

    stack = LocalStack(
        stack=StackSettings(data_dir=tmp_path),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:19092"),
        redis=RedisSettings(url=SecretStr("redis://127.0.0.1:16379/0")),
    )
    stack.endpoints = [
        Endpoint("kafka", "127.0.0.1:19092", "embedded"),
        Endpoint("serving", "http://127.0.0.1:18000", "embedded"),
        Endpoint("drift-processor", "http://127.0.0.1:19103/metrics", "embedded"),
        Endpoint("slo-processor", "http://127.0.0.1:19104/metrics", "embedded"),
        Endpoint("alert-evaluator", "http://127.0.0.1:19105/metrics", "embedded"),
        Endpoint("features", "http://127.0.0.1:19106/metrics", "embedded"),
        Endpoint("shadow-comparison", "http://127.0.0.1:19109/metrics", "embedded"),
        Endpoint(
            "retrain-worker",
            "consumer group driftline-retrain",
            "embedded",
            metrics="127.0.0.1:19107",
        ),
        Endpoint(
            "canary-controller",
            "consumer group driftline-canary",
            "embedded",
            metrics="127.0.0.1:19108",
        ),
        Endpoint("prometheus", "http://127.0.0.1:19090", "embedded"),
    ]
    stack.alertmanager_url = "http://127.0.0.1:19093"
    assert stack.operator_env() == {
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "DRIFTLINE_REDIS_URL": "redis://127.0.0.1:16379/0",
        "DRIFTLINE_DATA_DIR": str(tmp_path.resolve()),
        "DRIFTLINE_SERVING_PORT": "18000",
        "DRIFTLINE_DRIFT_METRICS_PORT": "19103",
        "DRIFTLINE_SLO_METRICS_PORT": "19104",
        "DRIFTLINE_ALERTING_METRICS_PORT": "19105",
        "DRIFTLINE_FEATURES_METRICS_PORT": "19106",
        "DRIFTLINE_SHADOW_METRICS_PORT": "19109",
        "DRIFTLINE_RETRAIN_METRICS_PORT": "19107",
        "DRIFTLINE_CANARY_METRICS_PORT": "19108",
        "DRIFTLINE_PROMETHEUS_URL": "http://127.0.0.1:19090",
        "DRIFTLINE_ALERTMANAGER_URL": "http://127.0.0.1:19093",
    }


def test_health_command_lines_and_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import driftline.health_cli as health_cli
    from driftline.cli import app

    def down(_: float) -> str:
        raise ProbeFailed("connection refused")

    probes = [Probe("kafka", "k:1", lambda t: "1 broker"), Probe("redis", "r:1", down),
              Probe("prometheus", "-", None, "DRIFTLINE_PROMETHEUS_URL is not set")]  # fmt: skip
    monkeypatch.setattr(health_cli, "deployment_probes", lambda: probes)
    result = CliRunner().invoke(app, ["health", "--timeout", "1"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert re.match(r"up +kafka +k:1  1 broker \(\d+ ms\)$", lines[0]), lines
    assert re.match(r"down +redis +r:1  connection refused \(\d+ ms\)$", lines[1]), lines
    assert re.match(
        r"not configured +prometheus  -  DRIFTLINE_PROMETHEUS_URL is not set$", lines[2]
    )
    assert lines[3] == "DOWN: redis"
    skipped = CliRunner().invoke(app, ["health", "--skip", "redis"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.output.splitlines()[1]
    unknown = CliRunner().invoke(app, ["health", "--skip", "kafak"])
    assert unknown.exit_code == 2 and "unknown component(s) ['kafak']" in unknown.output


def test_health_probes_every_component_it_names_the_shadow_job_on_its_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--skip` accepts COMPONENTS: each is probed, in that order; the shadow comparison
    job is found on DRIFTLINE_SHADOW_METRICS_PORT, and port 0 means not configured."""
    from driftline.health import COMPONENTS, deployment_probes

    monkeypatch.setenv("DRIFTLINE_SHADOW_METRICS_PORT", "19109")
    probes = deployment_probes()
    assert [p.name for p in probes] == list(COMPONENTS)
    shadow = next(p for p in probes if p.name == "shadow-comparison")
    assert shadow.target == "http://127.0.0.1:19109/metrics" and shadow.check is not None
    monkeypatch.setenv("DRIFTLINE_SHADOW_METRICS_PORT", "0")
    off = next(p for p in deployment_probes() if p.name == "shadow-comparison")
    assert off.check is None and off.unconfigured == "metrics port is 0 (not served)"


def test_health_probes_the_drift_merge_step_only_in_partitioned_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keyed drift mode has no merge step: not configured, not down. Partitioned mode:
    its /metrics on DRIFTLINE_DRIFT_MERGE_METRICS_PORT."""
    from driftline.health import deployment_probes

    monkeypatch.delenv("DRIFTLINE_DRIFT_PARTITIONED", raising=False)
    keyed = next(p for p in deployment_probes() if p.name == "drift-merge")
    assert keyed.check is None and "DRIFTLINE_DRIFT_PARTITIONED" in keyed.unconfigured
    monkeypatch.setenv("DRIFTLINE_DRIFT_PARTITIONED", "true")
    monkeypatch.setenv("DRIFTLINE_DRIFT_MERGE_METRICS_PORT", "19110")
    merge = next(p for p in deployment_probes() if p.name == "drift-merge")
    assert merge.target == "http://127.0.0.1:19110/metrics" and merge.check is not None
