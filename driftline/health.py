"""``driftline health``: is every part of a deployment up? One line per component.

The on-call runbook's monthly update starts and ends with this check, so it must answer
fast even when things are down: every probe has a bound (``DRIFTLINE_HEALTH_TIMEOUT_S``)
and all probes run at once. Where each component is comes from the settings the
components themselves read (``DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS``, ``DRIFTLINE_REDIS_URL``,
``MLFLOW_TRACKING_URI``, ``DRIFTLINE_SERVING_PORT``, the processors' metrics ports,
``DRIFTLINE_ALERTMANAGER_URL``) plus ``DRIFTLINE_PROMETHEUS_URL``; a component with no
address (metrics port 0, no Alertmanager URL) is reported as not configured, not down.
The retrain worker and the canary controller serve no API: they are up when their
``/metrics`` answers and their consumer group has live members. The drift merge step runs
only in partitioned drift mode (``DRIFTLINE_DRIFT_PARTITIONED``); in keyed mode it is
not configured.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import redis
from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from driftline.settings import OperatorSettings
from retrain.settings import CanaryAnalysisSettings, RetrainSettings
from schemas.kafka_config import admin_config
from schemas.redaction import redact_credentials, redact_url
from schemas.rollout_state import KEY_PREFIX
from schemas.settings import DataSettings, KafkaSettings, MlflowSettings, RedisSettings
from schemas.topics import all_topics
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from stream.settings import (
    DriftMergeSettings,
    DriftProcessorSettings,
    FeatureProcessorSettings,
    ShadowSettings,
    SloSettings,
)

State = Literal["up", "down", "not configured", "skipped"]

#: Group states in which a consumer group has members consuming.
_LIVE_GROUP_STATES = (
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
)


class ProbeFailed(Exception):
    """A component answered wrongly or not at all; the message says how."""


@dataclass(frozen=True)
class Probe:
    """How to check one component. ``check`` is None when it is not configured."""

    name: str
    target: str
    check: Callable[[float], str] | None
    unconfigured: str = ""


@dataclass(frozen=True)
class HealthResult:
    """What one probe found."""

    name: str
    state: State
    target: str
    detail: str
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, str | float]:
        return {
            "component": self.name,
            "state": self.state,
            "target": self.target,
            "detail": self.detail,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def run_probes(
    probes: list[Probe], timeout_s: float, skip: frozenset[str] = frozenset()
) -> list[HealthResult]:
    """Run every configured probe at once; results in the order of ``probes``."""

    def one(probe: Probe) -> HealthResult:
        if probe.name in skip:
            return HealthResult(probe.name, "skipped", probe.target, "skipped (--skip)")
        if probe.check is None:
            return HealthResult(probe.name, "not configured", probe.target, probe.unconfigured)
        started = time.monotonic()
        try:
            detail = probe.check(timeout_s)
            state: State = "up"
        except ProbeFailed as exc:
            detail, state = str(exc), "down"
        except Exception as exc:  # any failure of a probe means "down"
            detail, state = f"{type(exc).__name__}: {exc}", "down"
        elapsed = (time.monotonic() - started) * 1000
        return HealthResult(probe.name, state, probe.target, redact_credentials(detail), elapsed)

    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        return list(pool.map(one, probes))


def deployment_probes() -> list[Probe]:
    """Every component of a Driftline deployment, located by its settings."""
    kafka = KafkaSettings()
    serving = ServingSettings()
    drift, slo, alerting = DriftProcessorSettings(), SloSettings(), AlertingSettings()
    features = FeatureProcessorSettings()
    shadow = ShadowSettings()
    retrain, canary = RetrainSettings(), CanaryAnalysisSettings()
    operator = OperatorSettings()
    alertmanager = AlertmanagerSettings().url
    tracking_uri = _tracking_uri()
    return [
        Probe("kafka", kafka.bootstrap_servers, lambda t: _kafka(kafka, t)),
        Probe("redis", redact_url(RedisSettings().url.get_secret_value()), _redis),
        Probe(
            "mlflow",
            redact_url(tracking_uri),
            lambda t: _mlflow(tracking_uri, serving.model_name, serving.model_alias, t),
        ),
        Probe("serving", _http_base(serving.host, serving.port), _serving(serving)),
        _metrics_probe("drift-processor", drift.metrics_host, drift.metrics_port),
        _drift_merge_probe(drift),
        _metrics_probe("slo-processor", slo.metrics_host, slo.metrics_port),
        _metrics_probe("alert-evaluator", alerting.metrics_host, alerting.metrics_port),
        _metrics_probe("features", features.metrics_host, features.metrics_port),
        _metrics_probe("shadow-comparison", shadow.metrics_host, shadow.metrics_port),
        _consumer_probe(
            "retrain-worker", kafka, retrain.group_id, retrain.metrics_host, retrain.metrics_port
        ),
        _consumer_probe(
            "canary-controller", kafka, canary.group_id, canary.metrics_host, canary.metrics_port
        ),
        _url_probe("alertmanager", alertmanager, "/-/healthy", "DRIFTLINE_ALERTMANAGER_URL"),
        _url_probe("prometheus", operator.prometheus_url, "/-/healthy", "DRIFTLINE_PROMETHEUS_URL"),
    ]


COMPONENTS = (
    "kafka", "redis", "mlflow", "serving", "drift-processor", "drift-merge", "slo-processor",
    "alert-evaluator", "features", "shadow-comparison", "retrain-worker", "canary-controller",
    "alertmanager", "prometheus",
)  # fmt: skip


def _tracking_uri() -> str:
    uri = MlflowSettings().tracking_uri
    if uri:
        return uri
    return f"sqlite:///{(DataSettings().data_dir / 'mlflow.db').resolve()}"


def _http_base(host: str, port: int) -> str:
    """Where to reach a server bound to ``host``: a wildcard bind is reached on loopback."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - not a bind
    return f"http://{reach}:{port}"


def _get(url: str, timeout_s: float) -> httpx.Response:
    try:
        return httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"{type(exc).__name__}: {exc}") from None


def _ok(url: str, timeout_s: float) -> httpx.Response:
    response = _get(url, timeout_s)
    if response.status_code != 200:
        path = urlsplit(url).path
        raise ProbeFailed(f"{path} answered {response.status_code}")
    return response


def _kafka(settings: KafkaSettings, timeout_s: float) -> str:
    admin = _admin(settings)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ProbeFailed(f"no answer within {timeout_s:g} s ({exc.args[0]})") from None
    declared = [spec.name for spec in all_topics(settings.topic_prefix)]
    missing = [name for name in declared if name not in metadata.topics]
    if missing:
        raise ProbeFailed(
            f"{len(missing)} declared topics missing: {', '.join(missing)} "
            "(`driftline topics ensure` creates them)"
        )
    brokers = len(metadata.brokers)
    return f"{brokers} broker{'s' * (brokers != 1)}, all {len(declared)} declared topics"


def _admin(settings: KafkaSettings) -> AdminClient:
    """An admin client whose connection errors stay out of the terminal (the line says it)."""
    quiet = logging.getLogger("driftline.health.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    return AdminClient({**admin_config(settings), "logger": quiet})  # type: ignore[dict-item]


def _redis(timeout_s: float) -> str:
    client = redis.Redis.from_url(
        RedisSettings().url.get_secret_value(),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    try:
        client.ping()
        states = sum(1 for _ in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
    except redis.RedisError as exc:
        raise ProbeFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    return f"answers PING; rollout state of {states} model{'s' * (states != 1)}"


def _mlflow(tracking_uri: str, model_name: str, alias: str, timeout_s: float) -> str:
    """The served alias resolves. A sqlite store must exist (MLflow would create one)."""
    parts = urlsplit(tracking_uri)
    if parts.scheme == "sqlite":
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ProbeFailed(f"no tracking store at {path} (`driftline train` creates one)")
    elif parts.scheme in ("http", "https"):
        _ok(f"{tracking_uri.rstrip('/')}/health", timeout_s)
        # Fail within the bound instead of MLflow's default retries (minutes).
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(timeout_s)))
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri, tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, alias).version
    except MlflowException as exc:
        raise ProbeFailed(
            f"{model_name}@{alias} does not resolve: {exc.message.splitlines()[0]}"
        ) from None
    return f"{model_name}@{alias} is version {version}"


def _serving(settings: ServingSettings) -> Callable[[float], str]:
    base = _http_base(settings.host, settings.port)

    def check(timeout_s: float) -> str:
        _ok(f"{base}/health", timeout_s)
        ready = _get(f"{base}/ready", timeout_s)
        try:
            body = ready.json()
        except ValueError:
            body = {}
        if ready.status_code != 200:
            raise ProbeFailed(f"/health ok but /ready answered {ready.status_code}: {body}")
        model = body.get("model") or {}
        return (
            f"/health ok, /ready: {model.get('name')} version {model.get('version')}, "
            f"broker {body.get('broker')}"
        )

    return check


def _metrics_probe(name: str, host: str, port: int) -> Probe:
    if port == 0:
        return Probe(name, "-", None, "metrics port is 0 (not served)")
    url = f"{_http_base(host, port)}/metrics"

    def check(timeout_s: float) -> str:
        response = _ok(url, timeout_s)
        return f"/metrics ok ({len(response.content)} bytes)"

    return Probe(name, url, check)


def _drift_merge_probe(drift: DriftProcessorSettings) -> Probe:
    """The merge step's /metrics, when the drift processors run partitioned (else there
    is none to probe: keyed drift processors write DriftScores themselves)."""
    if not drift.partitioned:
        return Probe("drift-merge", "-", None, "DRIFTLINE_DRIFT_PARTITIONED is not true")
    merge = DriftMergeSettings()
    return _metrics_probe("drift-merge", merge.metrics_host, merge.metrics_port)


def _url_probe(name: str, base: str | None, path: str, variable: str) -> Probe:
    if not base:
        return Probe(name, "-", None, f"{variable} is not set")
    url = base.rstrip("/") + path

    def check(timeout_s: float) -> str:
        _ok(url, timeout_s)
        return f"{path} ok"

    return Probe(name, redact_url(url), check)


def _consumer_probe(
    name: str, settings: KafkaSettings, group: str, metrics_host: str, metrics_port: int
) -> Probe:
    """A consumer without an API: its /metrics answers (when served) and its consumer group
    has live members (it may serve metrics while stuck outside its group)."""
    group_check = _group_check(settings, group)
    if metrics_port == 0:
        return Probe(name, f"consumer group {group}", group_check)
    url = f"{_http_base(metrics_host, metrics_port)}/metrics"

    def check(timeout_s: float) -> str:
        _ok(url, timeout_s)
        return f"/metrics ok; {group_check(timeout_s)}"

    return Probe(name, f"{url}, consumer group {group}", check)


def _group_check(settings: KafkaSettings, group: str) -> Callable[[float], str]:
    def check(timeout_s: float) -> str:
        admin = _admin(settings)
        future = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group]
        try:
            description = future.result(timeout=timeout_s + 1)
        except KafkaException as exc:
            raise ProbeFailed(f"group {group} not described: {exc.args[0]}") from None
        except TimeoutError:
            raise ProbeFailed(f"group {group}: no answer within {timeout_s:g} s") from None
        state = description.state
        if state == ConsumerGroupState.UNKNOWN:
            # Not live yet, and not necessarily broken: the embedded broker describes a
            # group as unknown while it holds its first join (about 3 s after a consumer
            # subscribes; pinned in tests/regression/test_embedded_broker_quirks.py).
            raise ProbeFailed(
                f"no live consumer in group {group} (state unknown: a consumer that started "
                "seconds ago is still joining; run again)"
            )
        if state not in _LIVE_GROUP_STATES:
            raise ProbeFailed(f"no live consumer in group {group} (state {state.name.lower()})")
        members = len(description.members)
        # The embedded broker reports a live group as stable with no member list.
        count = f", {members} member{'s' * (members != 1)}" if members else ""
        return f"group {group} {state.name.lower()}{count}"

    return check
