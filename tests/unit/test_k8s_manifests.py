"""infra/k8s renders with ``kubectl kustomize`` and the rendered objects are what the
runbooks and the issue name: namespace ml-platform, the Deployments with their labels,
probes on /health and /ready, requests and limits, PodDisruptionBudgets, the HPA of
ml-model-api, replicas within partitions, and only DRIFTLINE_* variables the settings
classes read. The same checks hold for the base with the ``partitioned`` component
(partitioned drift processing: drift-merge added, drift-processor switched). Skipped,
naming kubectl, where it is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from retrain.settings import CanaryAnalysisSettings, RetrainSettings
from schemas.topics import (
    DRIFT_PARTIALS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings
from stream.settings import (
    DriftMergeSettings,
    DriftProcessorSettings,
    FeatureProcessorSettings,
    ShadowSettings,
    SloSettings,
)
from tests.settings_env import env_names

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra/k8s"
NAMESPACE = "ml-platform"
#: Deployment -> the topic its consumer group reads (replicas beyond partitions idle).
CONSUMERS = {
    "drift-processor": INFERENCE_EVENTS,
    "slo-processor": INFERENCE_EVENTS,
    "features-processor": INFERENCE_EVENTS,
    "shadow-comparison": INFERENCE_EVENTS,
    "alert-evaluator": DRIFT_SCORES,
    "retrain-worker": RETRAIN_REQUESTS,
    "canary-controller": SLO_WINDOWS,
    "drift-merge": DRIFT_PARTIALS,
}
#: Deployments serving HTTP: the settings class and its port field.
HTTP: dict[str, tuple[type[BaseSettings], str]] = {
    "ml-model-api": (ServingSettings, "port"),
    "feature-store-service": (ServingSettings, "port"),
    "drift-processor": (DriftProcessorSettings, "metrics_port"),
    "slo-processor": (SloSettings, "metrics_port"),
    "alert-evaluator": (AlertingSettings, "metrics_port"),
    "features-processor": (FeatureProcessorSettings, "metrics_port"),
    "shadow-comparison": (ShadowSettings, "metrics_port"),
    "drift-merge": (DriftMergeSettings, "metrics_port"),
}
#: Consumers with a metrics port but readiness by consumer-group membership (exec).
GROUP_READY: dict[str, tuple[type[BaseSettings], str]] = {
    "retrain-worker": (RetrainSettings, "metrics_port"),
    "canary-controller": (CanaryAnalysisSettings, "metrics_port"),
}
#: Only with the component infra/k8s/partitioned.
PARTITIONED_ONLY = {"drift-merge"}
DEPLOYMENTS = {*HTTP, *CONSUMERS, "mlflow-tracking-server"} - PARTITIONED_ONLY
#: What is rendered: the base alone, and the base with the partitioned component (in an
#: overlay, as docs/deployment.md applies it).
VARIANTS = ("base", "partitioned")


#: The oldest Kubernetes the base is validated against (HPA v2, policy/v1 PDBs).
KUBERNETES_VERSION = "1.30.0"


def render(variant: str, workdir: Path) -> str:
    """``kubectl kustomize`` of the base, or of an overlay in ``workdir`` that adds the
    partitioned component to it (kustomize wants relative paths there)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it renders infra/k8s with `kubectl kustomize`)")
    target = K8S
    if variant == "partitioned":
        base = os.path.relpath(K8S, workdir)
        (workdir / "kustomization.yaml").write_text(
            f"resources: [{base}]\ncomponents: [{base}/partitioned]\n"
        )
        target = workdir
    done = subprocess.run(
        [kubectl, "kustomize", str(target)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def rendered(variant: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    text = render(variant, tmp_path_factory.mktemp(variant))
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_objects_follow_the_kubernetes_schemas(variant: str, tmp_path: Path) -> None:
    """Strict: an unknown or misspelt field (``failureTreshold``) fails, as the API server
    would refuse it."""
    validator = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    if validator is None:
        pytest.skip("kubernetes-validate is not installed (pip install -e '.[dev]')")
    manifest = tmp_path / "rendered.yaml"
    (tmp_path / "overlay").mkdir()
    manifest.write_text(render(variant, tmp_path / "overlay"))
    done = subprocess.run(
        [validator, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(manifest)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout + done.stderr


def objects(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(found) == 1, deployment["metadata"]["name"]
    return found[0]


def environment(rendered: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, str]:
    """What the container sees: its envFrom ConfigMaps and Secrets, then its env values."""
    configmaps, secrets = objects(rendered, "ConfigMap"), objects(rendered, "Secret")
    env: dict[str, str] = {}
    spec = container(deployment)
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    env.update({e["name"]: str(e["value"]) for e in spec.get("env", []) if "value" in e})
    return env


def settings_of(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], env: dict[str, str]
) -> Any:
    for var in list(os.environ):
        if var.startswith(("DRIFTLINE_", "MLFLOW_", "DRIFT_")):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return cls()


def test_everything_is_in_the_ml_platform_namespace(rendered: list[dict[str, Any]]) -> None:
    assert objects(rendered, "Namespace").keys() == {NAMESPACE}
    elsewhere = [
        (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
        for o in rendered
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != NAMESPACE
    ]
    assert not elsewhere, elsewhere
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "driftline" for o in rendered
    )


def test_the_deployments_the_runbooks_name(rendered: list[dict[str, Any]], variant: str) -> None:
    deployments = objects(rendered, "Deployment")
    expected = DEPLOYMENTS | (PARTITIONED_ONLY if variant == "partitioned" else set())
    assert set(deployments) >= expected, expected - set(deployments)
    if variant == "base":
        assert not set(deployments) & PARTITIONED_ONLY, "the base runs keyed mode"
    for name, deployment in deployments.items():
        labels = {"app": name}
        assert deployment["metadata"]["labels"].items() >= labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"] == labels, name
        assert deployment["spec"]["template"]["metadata"]["labels"].items() >= labels.items()
    api = deployments["ml-model-api"]
    assert container(api)["command"] == ["python", "-m", "serving"]
    assert objects(rendered, "Service")["ml-model-api"]["spec"]["selector"] == {
        "app": "ml-model-api"
    }


def test_probes_requests_limits_and_pinned_images(rendered: list[dict[str, Any]]) -> None:
    for name, deployment in objects(rendered, "Deployment").items():
        spec = container(deployment)
        for probe in ("livenessProbe", "readinessProbe"):
            assert probe in spec, f"{name} has no {probe}"
        if name in HTTP:
            assert spec["livenessProbe"]["httpGet"]["path"] == "/health", name
            assert spec["readinessProbe"]["httpGet"]["path"] == "/ready", name
        if name in GROUP_READY:
            assert spec["livenessProbe"]["httpGet"]["path"] == "/health", name
            ready = " ".join(spec["readinessProbe"]["exec"]["command"])
            assert "describe_consumer_groups" in ready and "_GROUP_ID" in ready, name
        resources = spec["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), (name, kind)
        image = spec["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", (name, image)
        pod = deployment["spec"]["template"]["spec"]
        if image.split("/")[-1].split(":")[0] in ("driftline", "mlflow"):
            assert pod["securityContext"]["runAsNonRoot"] is True, name


def test_every_deployment_has_a_disruption_budget(rendered: list[dict[str, Any]]) -> None:
    budgets = objects(rendered, "PodDisruptionBudget")
    for name, deployment in objects(rendered, "Deployment").items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        ]  # fmt: skip
        assert matching, f"{name} has no PodDisruptionBudget"
        if deployment["spec"]["replicas"] > 1:
            assert any(b["spec"].get("minAvailable") == 1 for b in matching), name


def test_the_api_scales_on_cpu_and_request_rate(rendered: list[dict[str, Any]]) -> None:
    hpa = objects(rendered, "HorizontalPodAutoscaler")["ml-model-api"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "ml-model-api"
    }  # fmt: skip
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "serving_app_requests_per_second"
    assert hpa["spec"]["minReplicas"] >= 2


def test_consumers_have_no_more_replicas_than_partitions(rendered: list[dict[str, Any]]) -> None:
    deployments = objects(rendered, "Deployment")
    for name, topic in CONSUMERS.items():
        if name not in deployments:  # drift-merge in the base: the test above says why
            continue
        assert deployments[name]["spec"]["replicas"] <= topic.partitions, (name, topic.name)


def test_only_settings_variables_and_they_validate(
    rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = env_names()
    for name, deployment in objects(rendered, "Deployment").items():
        if container(deployment)["image"].rsplit("/", 1)[-1].startswith("mlflow"):
            continue
        env = environment(rendered, deployment)
        unknown = [var for var in env if var.startswith("DRIFTLINE_") and var not in known]
        assert not unknown, f"{name}: no settings class reads {unknown}"
        if name in HTTP or name in GROUP_READY:
            cls, field = HTTP.get(name) or GROUP_READY[name]
            settings = settings_of(monkeypatch, cls, env)
            port = getattr(settings, field)
            # Loopback would refuse the kubelet's probes and Prometheus.
            assert getattr(settings, field.replace("port", "host")) == "0.0.0.0", name
            spec = container(deployment)
            assert [p["containerPort"] for p in spec["ports"]] == [port], name
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(port), name
    feature_store = container(objects(rendered, "Deployment")["feature-store-service"])
    assert feature_store["ports"][0]["containerPort"] == 8080


def test_secrets_are_placeholders_and_mlflow_uses_postgres(rendered: list[dict[str, Any]]) -> None:
    secrets = objects(rendered, "Secret")
    for name, secret in secrets.items():
        assert "data" not in secret, f"{name}: keep placeholders readable (stringData)"
    assert "REPLACE-ME" in secrets["driftline-secrets"]["stringData"]["DRIFTLINE_ADMIN_TOKENS"]
    uri = secrets["mlflow-postgres"]["stringData"]["MLFLOW_BACKEND_STORE_URI"]
    assert uri.startswith("postgresql://") and "@mlflow-postgres:5432/" in uri
    mlflow = container(objects(rendered, "Deployment")["mlflow-tracking-server"])
    [backend] = [e for e in mlflow["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI"]
    assert backend["valueFrom"]["secretKeyRef"]["name"] == "mlflow-postgres"


def test_the_base_needs_no_custom_resources(rendered: list[dict[str, Any]]) -> None:
    """Applies on a cluster without Argo Rollouts or Flagger (progressive-delivery/ is
    applied on its own, for the controller the cluster runs)."""
    builtin = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2")
    assert {o["apiVersion"] for o in rendered} <= set(builtin)


def test_the_shadow_comparison_job_runs_its_command(rendered: list[dict[str, Any]]) -> None:
    """The Deployment runs `driftline shadow run`, as `make up` and compose do."""
    shadow = objects(rendered, "Deployment")["shadow-comparison"]
    assert container(shadow)["command"] == ["driftline", "shadow", "run"]


def test_the_partitioned_component_switches_the_drift_processor_and_adds_the_merge(
    rendered: list[dict[str, Any]], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With infra/k8s/partitioned the drift processors send partials
    (DRIFTLINE_DRIFT_PARTITIONED=true) and `driftline drift merge` reads them with the same
    reference profiles; the base stays in keyed mode."""
    deployments = objects(rendered, "Deployment")
    drift = settings_of(
        monkeypatch, DriftProcessorSettings, environment(rendered, deployments["drift-processor"])
    )
    assert drift.partitioned is (variant == "partitioned")
    if variant == "base":
        return
    merge = deployments["drift-merge"]
    assert container(merge)["command"] == ["driftline", "drift", "merge"]
    env = environment(rendered, merge)
    drift_env = environment(rendered, deployments["drift-processor"])
    assert env["DRIFTLINE_DRIFT_REFERENCE_PATH"] == drift_env["DRIFTLINE_DRIFT_REFERENCE_PATH"]
    mounts = {m["mountPath"]: m for m in container(merge)["volumeMounts"]}
    volumes = {v["name"]: v for v in merge["spec"]["template"]["spec"]["volumes"]}
    profiles = mounts[env["DRIFTLINE_DRIFT_REFERENCE_PATH"]]
    claim = volumes[profiles["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == "driftline-profiles" and profiles["readOnly"] is True
    assert 1 < merge["spec"]["replicas"] <= DRIFT_PARTIALS.partitions
