"""docker-compose.yml, checked statically (no Docker engine on these machines).

Pinned images, DRIFTLINE_* variables the settings classes really read (values that
validate), health checks behind every ``service_healthy``, and a compose Prometheus that
scrapes each Driftline service by its service name on the port its settings give it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from retrain.settings import CanaryAnalysisSettings, RetrainSettings
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from stream.settings import (
    DriftMergeSettings,
    DriftProcessorSettings,
    FeatureProcessorSettings,
    ShadowSettings,
    SloSettings,
)
from tests.settings_env import env_names

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS = REPO / "infra/prometheus/prometheus.compose.yml"
#: ${VAR:-default} / ${VAR-default} / ${VAR} interpolation of compose.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
#: Driftline services that serve /metrics: the settings class and its port/host fields.
METRICS: dict[str, tuple[type[BaseSettings], str, str]] = {
    "serving": (ServingSettings, "port", "host"),
    "drift-processor": (DriftProcessorSettings, "metrics_port", "metrics_host"),
    "slo-processor": (SloSettings, "metrics_port", "metrics_host"),
    "alert-evaluator": (AlertingSettings, "metrics_port", "metrics_host"),
    "features": (FeatureProcessorSettings, "metrics_port", "metrics_host"),
    "shadow-comparison": (ShadowSettings, "metrics_port", "metrics_host"),
    "drift-merge": (DriftMergeSettings, "metrics_port", "metrics_host"),
}
#: Consumers that serve /metrics but are healthy by consumer-group membership.
CONSUMER_METRICS: dict[str, tuple[type[BaseSettings], str, str]] = {
    "retrain-worker": (RetrainSettings, "metrics_port", "metrics_host"),
    "canary-controller": (CanaryAnalysisSettings, "metrics_port", "metrics_host"),
}
#: Every Driftline service the issue and the runbook name.
DRIFTLINE_SERVICES = {*METRICS, *CONSUMER_METRICS}


def load_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves anchors and <<
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load_compose()["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with compose's ``${VAR:-default}`` resolved to the default."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): INTERPOLATION.sub(lambda m: m.group(2) or "", str(v)) for k, v in raw.items()}


def driftline_image() -> str:
    return str(services()["serving"]["image"])


def is_driftline(service: dict[str, Any]) -> bool:
    return service.get("image") == driftline_image()


def image_is_pinned(image: str) -> bool:
    """A digest, or a tag other than latest (a registry port is not a tag)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.split(":", 1)[1] not in ("", "latest")


def dockerfiles() -> Iterator[tuple[str, Path]]:
    for name, service in services().items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        file = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        yield name, REPO / context / file


def scrape_targets() -> dict[str, str]:
    config = yaml.safe_load(PROMETHEUS.read_text())
    return {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }


def settings_of(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], env: dict[str, str]
) -> Any:
    """``cls`` as the service would build it: only the service's environment set."""
    import os

    for var in list(os.environ):
        if var.startswith(("DRIFTLINE_", "MLFLOW_", "DRIFT_")):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return cls()


def test_every_image_is_pinned() -> None:
    loose = [
        (name, svc.get("image"))
        for name, svc in services().items()
        if "build" not in svc and not image_is_pinned(str(svc.get("image", "")))
    ]
    assert not loose, f"pin these images to a tag or digest: {loose}"
    built = [(name, svc["image"]) for name, svc in services().items() if "build" in svc]
    assert all(image_is_pinned(str(image)) for _, image in built), built


def test_image_check_refuses_latest_and_bare_names() -> None:
    assert not image_is_pinned("redis")
    assert not image_is_pinned("redis:latest")
    assert not image_is_pinned("localhost:5000/redis")
    assert image_is_pinned("localhost:5000/redis:7.4.1")
    assert image_is_pinned("redis@sha256:" + "a" * 64)


def test_every_dockerfile_base_is_pinned_and_runs_unprivileged() -> None:
    found = dict(dockerfiles())
    assert REPO / "Dockerfile" in found.values(), "the Driftline services build ./Dockerfile"
    for name, path in found.items():
        text = path.read_text()
        bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
        assert bases, f"{name}: {path} has no FROM"
        assert all(image_is_pinned(base) for base in bases), (name, bases)
        users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
        assert users and users[-1].split(":")[0] not in ("root", "0"), (name, users)
    base = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert base[0].startswith("python:3.11.") and "slim" in base[0], base


def test_every_driftline_variable_is_a_settings_field() -> None:
    known = env_names()
    unknown = [
        (name, var)
        for name, svc in services().items()
        for var in environment(svc)
        if var.startswith("DRIFTLINE_") and var not in known
    ]
    assert not unknown, f"no settings class reads these: {unknown}"
    # The x- anchors are merged into services; check them too, should one go unused.
    for key, value in load_compose().items():
        if key.startswith("x-") and isinstance(value, dict):
            assert all(var in known for var in value if var.startswith("DRIFTLINE_")), key


def test_the_variable_check_sees_a_misspelt_name() -> None:
    assert "DRIFTLINE_SERVING_PORT" in env_names()
    assert "DRIFTLINE_SERVING_PROT" not in env_names()
    assert "DRIFT_REFERENCE_PATH" in env_names()  # an alias of a field


def test_every_driftline_service_is_there_built_from_the_one_image() -> None:
    found = {name for name, svc in services().items() if is_driftline(svc)}
    assert found >= DRIFTLINE_SERVICES, DRIFTLINE_SERVICES - found
    assert driftline_image().startswith("driftline:")


def test_driftline_settings_in_compose_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Driftline service's environment builds the settings it reads, without error."""
    from schemas.settings import KafkaSettings, RedisSettings, SchemaRegistrySettings

    for name, svc in services().items():
        if not is_driftline(svc):
            continue
        env = environment(svc)
        for cls in (
            KafkaSettings, RedisSettings, SchemaRegistrySettings, ServingSettings,
            DriftProcessorSettings, SloSettings, AlertingSettings, AlertmanagerSettings,
            RetrainSettings, CanaryAnalysisSettings, FeatureProcessorSettings, ShadowSettings,
            DriftMergeSettings,
        ):  # fmt: skip
            settings_of(monkeypatch, cls, env)  # raises ValidationError naming the field
        kafka = settings_of(monkeypatch, KafkaSettings, env)
        assert kafka.bootstrap_servers.split(":")[0] in services(), (name, kafka)


def test_prometheus_scrapes_each_service_by_name_on_its_settings_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = scrape_targets()
    all_services = services()
    for name, (cls, port_field, host_field) in METRICS.items():
        settings = settings_of(monkeypatch, cls, environment(all_services[name]))
        port = getattr(settings, port_field)
        assert targets.get(name) == f"{name}:{port}", (name, targets.get(name), port)
        # Loopback would refuse Prometheus, which connects from another container.
        assert getattr(settings, host_field) == "0.0.0.0", (name, host_field)
        healthcheck = " ".join(all_services[name]["healthcheck"]["test"])
        assert f":{port}/" in healthcheck, (name, healthcheck)
    for name, (cls, port_field, host_field) in CONSUMER_METRICS.items():
        settings = settings_of(monkeypatch, cls, environment(all_services[name]))
        assert targets.get(name) == f"{name}:{getattr(settings, port_field)}", name
        assert getattr(settings, host_field) == "0.0.0.0", (name, host_field)
    for job, target in targets.items():
        host, port = target.rsplit(":", 1)
        assert host in all_services, f"job {job} scrapes {host}, which is no compose service"
        published = [str(p).rsplit(":", 1)[-1] for p in all_services[host].get("ports", [])]
        if published:
            assert port in published, (job, target, published)


def test_alertmanager_on_9093_and_everyone_points_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    all_services = services()
    assert "9093:9093" in all_services["alertmanager"]["ports"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    [am] = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    env = environment(all_services["alert-evaluator"])
    assert settings_of(monkeypatch, AlertmanagerSettings, env).url == "http://alertmanager:9093"


def test_depends_on_waits_for_health_checks_that_exist() -> None:
    all_services = services()
    for name, svc in all_services.items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, rule in depends.items():
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (
                name,
                other,
            )
            if condition == "service_healthy":
                assert "healthcheck" in all_services[other], f"{name} waits on {other}'s health"
        one_shot = svc.get("restart") == "no"
        assert one_shot or "healthcheck" in svc, f"{name} has no health check"
    for name in DRIFTLINE_SERVICES:
        depends = all_services[name]["depends_on"]
        assert {"kafka", "redis", "mlflow", "bootstrap"} <= set(depends), name


def test_mounted_config_files_exist() -> None:
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    grafana = " ".join(services()["grafana"]["volumes"])
    assert "infra/grafana/provisioning" in grafana and "infra/grafana/dashboards" in grafana


def test_mlflow_uses_postgres_and_an_artifact_volume() -> None:
    mlflow = services()["mlflow"]
    command = mlflow["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql://") and "@postgres:5432/" in backend
    assert command[command.index("--artifacts-destination") + 1] == "/mlflow/artifacts"
    assert any(str(v).endswith(":/mlflow/artifacts") for v in mlflow["volumes"])
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_gets_every_package_pip_installs() -> None:
    """The Dockerfile copies, and .dockerignore lets through, each package pyproject.toml
    installs (a new top-level package would otherwise be missing from the image only)."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY\s+(\w+)\s+\./\1\s*$", dockerfile, flags=re.MULTILINE))
    assert copied == packages, (copied, packages)
    allowed = {
        line[1:].strip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert packages | {"pyproject.toml", "README.md"} <= allowed, allowed


def test_compose_file_follows_the_compose_specification() -> None:
    """The schema Docker Compose itself validates against (vendored by check-jsonschema):
    a misspelt key such as ``start_perod`` fails here instead of at ``compose up``."""
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_prometheus_has_the_jobs_of_the_local_one() -> None:
    """prometheus.compose.yml is prometheus.yml with service names for loopback: the same
    jobs, so a service added to one and forgotten in the other fails here."""
    local = yaml.safe_load((REPO / "infra/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"] for job in local["scrape_configs"]}
    assert set(scrape_targets()) == jobs


def test_the_shadow_comparison_job_runs_as_make_up_names_it() -> None:
    """`make up` starts `driftline shadow run` as shadow-comparison; compose runs the same
    command under the same name (Prometheus's job and the runbook use it)."""
    shadow = services()["shadow-comparison"]
    assert shadow["command"] == ["driftline", "shadow", "run"]
    assert shadow["restart"] == "unless-stopped"


def test_the_drift_merge_step_runs_only_with_the_partitioned_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partitioned drift mode (docs/drift.md): `drift-merge` runs `driftline drift merge`
    only under the profile `partitioned`, on the drift processors' reference profiles;
    drift-processor stays keyed unless DRIFTLINE_DRIFT_PARTITIONED=true is given, and
    every other service runs whatever the profiles."""
    all_services = services()
    merge = all_services["drift-merge"]
    assert merge["command"] == ["driftline", "drift", "merge"]
    assert merge["profiles"] == ["partitioned"]
    assert [n for n, s in all_services.items() if "profiles" in s] == ["drift-merge"]
    drift_env = environment(all_services["drift-processor"])
    merge_env = environment(merge)
    reference = "DRIFTLINE_DRIFT_REFERENCE_PATH"
    assert merge_env[reference] == drift_env[reference], "the merge scores on the same profiles"
    raw = all_services["drift-processor"]["environment"]["DRIFTLINE_DRIFT_PARTITIONED"]
    assert INTERPOLATION.fullmatch(raw), "set from the shell or .env, with the profile"
    assert settings_of(monkeypatch, DriftProcessorSettings, drift_env).partitioned is False
    drift_env["DRIFTLINE_DRIFT_PARTITIONED"] = "true"
    assert settings_of(monkeypatch, DriftProcessorSettings, drift_env).partitioned is True
