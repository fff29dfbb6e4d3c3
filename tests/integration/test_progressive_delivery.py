"""``/analysis/{model}/canary`` answers the canary controller's own verdicts, and the Argo
Rollouts and Flagger manifests under infra/k8s/progressive-delivery gate on what it answers.

Real parts: a redis-server, a sqlite MLflow, the embedded broker (DeploymentEvents), the
serving app; the verdicts come from :class:`CanaryController` fed SloWindow records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retrain.canary_controller import CanaryController
from retrain.settings import CanaryAnalysisSettings
from retrain.training import train_and_register
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutStore
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import MODEL_DEPLOYMENTS
from serving.app import create_app
from serving.settings import AdminSettings, ServingSettings
from serving.state import ServingConfig

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "infra" / "k8s" / "progressive-delivery"
T0 = 1_800_000_000_000


@pytest.fixture(scope="module")
def pd_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore.embedded(tmp_path_factory.mktemp("pd-mlflow"))


@dataclass
class Stage:
    """A model with a champion and a challenger, its serving app, and a controller."""

    name: str
    version: str
    client: TestClient
    rollout: RolloutStore
    controller: CanaryController
    clock: list[int]

    def start_canary(self) -> None:
        self.rollout.write_canary(self.name, self.version, 0.1)

    def windows(self, start: int, canary_error_rate: float = 0.0, count: int = 1) -> None:
        """Feed ``count`` window pairs from ``start`` to the controller, a minute apart."""
        for i in range(count):
            at = start + i * 60_000
            for variant, version, rate in (
                ("canary", self.version, canary_error_rate),
                ("baseline", "1", 0.0),
            ):
                self.controller.observe({
                    "model_name": self.name, "model_version": version, "variant": variant,
                    "window_start": at, "request_count": 100, "error_rate": rate,
                    "latency_p99_ms": 12.0 if variant == "canary" else 10.0,
                })  # fmt: skip


@pytest.fixture
def stage(
    pd_store: ModelStore,
    redis_url: str,
    redis_client: redis.Redis,
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    tmp_path: Path,
) -> Iterator[Stage]:
    make_topics(MODEL_DEPLOYMENTS)
    name = f"pd-{uuid.uuid4().hex[:6]}"
    train_and_register(pd_store, name)
    version = train_and_register(pd_store, name, alias="challenger", parameters={"C": 0.5}).version
    config = ServingConfig(
        serving=ServingSettings(model_name=name, publish_events=False),
        admin=AdminSettings(tokens=SecretStr("pd-token")),
        kafka=kafka_settings,
        data=DataSettings(data_dir=tmp_path),
        store=pd_store,
        redis=RedisSettings(url=SecretStr(redis_url)),
    )
    rollout = RolloutStore(redis_client)
    clock = [T0]
    settings = CanaryAnalysisSettings(group_id="unused", steps=[0.1, 0.5, 1.0], windows=3)
    controller = CanaryController(
        settings, kafka_settings, rollout, pd_store, clock=lambda: clock[0]
    )
    with TestClient(create_app(config)) as client:
        yield Stage(name, version, client, rollout, controller, clock)


def test_the_endpoint_answers_the_controllers_verdicts_with_their_evidence(stage: Stage) -> None:
    client, name = stage.client, stage.name
    unknown = client.get("/analysis/no-such-model/canary")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_model" and unknown.json()["known_models"] == [name]

    none = client.get(f"/analysis/{name}/canary")
    assert none.status_code == 404 and none.json()["error"] == "no_canary"

    stage.start_canary()
    waiting = client.get(f"/analysis/{name}/canary").json()
    assert waiting["verdict"] == "inconclusive" and "no window judged yet" in waiting["reason"]
    assert waiting["canary_version"] == stage.version and waiting["windows"] == []

    stage.windows(T0, count=2)
    two = client.get(f"/analysis/{name}/canary").json()
    assert (two["verdict"], two["windows_passed"], two["action"]) == ("inconclusive", 2, None)

    stage.windows(T0 + 120_000)
    passed = client.get(f"/analysis/{name}/canary").json()
    assert passed["verdict"] == "pass" and passed["action"] == "canary_step"
    assert passed["step"] == 0.1 and passed["steps"] == [0.1, 0.5, 1.0]
    assert passed["windows_required"] == 3 and passed["windows_passed"] == 3
    assert passed["thresholds"]["max_error_rate_increase"] == 0.01
    first = passed["windows"][0]
    assert first == {
        "window_start": T0, "judgement": "pass",
        "canary": {"requests": 100, "error_rate": 0.0, "latency_p99_ms": 12.0},
        "baseline": {"requests": 100, "error_rate": 0.0, "latency_p99_ms": 10.0},
    }  # fmt: skip
    state = stage.rollout.read(name)
    assert state is not None and state.canary_share == 0.5  # the controller acted on it
    assert passed["canary_active"] is True

    stage.clock[0] = T0 + 600_000  # the 50 % step starts; windows before it are ignored
    stage.windows(T0 + 600_000, canary_error_rate=0.2)
    failed = client.get(f"/analysis/{name}/canary").json()
    assert failed["verdict"] == "fail" and failed["action"] == "rolled_back"
    assert failed["step"] == 0.5 and "canary error rate 0.2000" in failed["reason"]
    assert [w["judgement"] for w in failed["windows"]] == ["fail"]
    assert failed["canary_active"] is False  # rolled back; the verdict stays readable
    assert client.post(f"/analysis/{name}/canary/gate").status_code == 412


def test_the_gate_maps_verdicts_to_status_codes(stage: Stage) -> None:
    gate = f"/analysis/{stage.name}/canary/gate"
    stage.start_canary()
    assert stage.client.post(gate).status_code == 412  # inconclusive
    allowing = stage.client.post(gate, params={"allow_inconclusive": "true"})
    assert allowing.status_code == 200 and allowing.json()["verdict"] == "inconclusive"
    stage.windows(T0, count=3)
    answer = stage.client.get(gate)
    assert answer.status_code == 200 and answer.json()["verdict"] == "pass"
    assert stage.client.post("/analysis/other/canary/gate").status_code == 404
    bad = stage.client.post(gate, params={"allow_inconclusive": "maybe"})
    assert bad.status_code == 422 and bad.json()["location"] == "query.allow_inconclusive"


# --- the manifests ---------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return document


def _path(url: str, model: str) -> str:
    """The path and query of a manifest's URL, for the test's model."""
    parts = urlsplit(url.replace("breast-cancer-classifier", model))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _argo_metric(model: str) -> tuple[str, Callable[[dict[str, Any]], Any], str, str]:
    """The AnalysisTemplate's path, jsonPath reader, success and failure literals."""
    template = _load("argo-analysis-template.yaml")
    assert template["kind"] == "AnalysisTemplate"
    args = {a["name"]: a["value"] for a in template["spec"]["args"]}
    (metric,) = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    url = re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: args[m.group(1)], web["url"])
    match = re.fullmatch(r"\{\$\.([\w.]+)\}", web["jsonPath"])
    assert match, f"jsonPath {web['jsonPath']!r} is not a plain field path"
    keys = match.group(1).split(".")

    def read(body: dict[str, Any]) -> Any:
        value: Any = body
        for key in keys:
            value = value[key]
        return value

    literal = r'result == "(\w+)"'
    success = re.fullmatch(literal, metric["successCondition"])
    failure = re.fullmatch(literal, metric["failureCondition"])
    assert success and failure, "conditions must compare result with a verdict literal"
    return _path(url, model), read, success.group(1), failure.group(1)


def test_the_argo_analysis_template_reads_the_verdict_the_endpoint_returns(stage: Stage) -> None:
    path, read, success, failure = _argo_metric(stage.name)
    assert urlsplit(path).path == f"/analysis/{stage.name}/canary"
    stage.start_canary()

    def measure() -> str:
        answer = stage.client.get(path)
        assert answer.status_code == 200, answer.text  # Argo: non-2xx is an error
        return str(read(answer.json()))

    assert measure() not in (success, failure)  # inconclusive: neither condition
    stage.windows(T0, count=3)
    assert measure() == success
    stage.clock[0] = T0 + 600_000
    stage.windows(T0 + 600_000, canary_error_rate=0.2)
    assert measure() == failure


def test_the_manifests_name_the_serving_objects_of_the_kustomize_base() -> None:
    base = MANIFESTS.parent
    namespace = yaml.safe_load((base / "kustomization.yaml").read_text())["namespace"]
    objects = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all((base / "ml-model-api.yaml").read_text())
        if d
    }
    canary = _load("flagger-canary.yaml")
    spec = canary["spec"]
    assert canary["metadata"]["namespace"] == namespace
    assert ("Deployment", spec["targetRef"]["name"]) in objects
    assert ("HorizontalPodAutoscaler", spec["autoscalerRef"]["name"]) in objects
    (service,) = [o for (kind, _), o in objects.items() if kind == "Service"]
    port = service["spec"]["ports"][0]["port"]
    host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}"
    assert spec["service"]["port"] == port
    urls = [h["url"] for h in spec["analysis"]["webhooks"]]
    template = _load("argo-analysis-template.yaml")
    urls += [a["value"] for a in template["spec"]["args"] if a["name"] == "serving-url"]
    assert {urlsplit(u).netloc for u in urls} == {host}


def test_the_flagger_canary_webhooks_gate_on_the_endpoint(stage: Stage) -> None:
    canary = _load("flagger-canary.yaml")
    assert canary["kind"] == "Canary"
    hooks = {h["type"]: _path(h["url"], stage.name) for h in canary["spec"]["analysis"]["webhooks"]}
    assert set(hooks) == {"rollout", "confirm-promotion"}
    for path in hooks.values():
        assert urlsplit(path).path == f"/analysis/{stage.name}/canary/gate"
    payload = {"name": "ml-model-api", "namespace": "ml-platform", "phase": "Progressing"}

    def statuses() -> dict[str, int]:
        return {kind: stage.client.post(p, json=payload).status_code for kind, p in hooks.items()}

    stage.start_canary()
    assert statuses() == {"rollout": 200, "confirm-promotion": 412}  # inconclusive
    stage.windows(T0, count=3)
    assert statuses() == {"rollout": 200, "confirm-promotion": 200}  # pass
    stage.clock[0] = T0 + 600_000
    stage.windows(T0 + 600_000, canary_error_rate=0.2)
    assert statuses() == {"rollout": 412, "confirm-promotion": 412}  # fail
