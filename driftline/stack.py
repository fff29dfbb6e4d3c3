"""The local stack behind ``make up`` / ``driftline up``.

Starts what is not configured externally (broker, Redis), waits until each is healthy,
creates every declared topic, trains the baseline when no champion exists (writing its
drift reference profile under ``<data_dir>/profiles``; serving itself never trains),
starts the prediction API (``python -m serving``), then the drift processor
(``python -m driftline drift run``) on those profiles (with
``DRIFTLINE_DRIFT_PARTITIONED=true`` also its merge step, ``python -m driftline drift
merge``, see docs/drift.md "Partitioned mode") and the SLO processor
(``python -m driftline slo run``), Alertmanager (when Debian's ``prometheus-alertmanager``
is installed), the alert evaluator (``python -m driftline alerts run``, posting to that
Alertmanager), the retrain worker (``python -m driftline retrain run``), the canary
controller (``python -m driftline canary run``) and
Prometheus (when ``prometheus`` is installed, scraping every service on the ports it
got), prints where everything listens and what it skipped and why, and on SIGINT/SIGTERM
stops everything. The features processor (``python -m driftline features run``) and the
shadow comparison job (``python -m driftline shadow run``) run next to the SLO processor.
A Kafka or Redis given through
``DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS`` / ``DRIFTLINE_REDIS_URL`` is used as is.

Start-up goes in dependency phases, every process of a phase launched at once and then
waited for side by side (each with its own health check and timeout): 1. broker, Redis,
Alertmanager; 2. topics and the champion (in this process); 3. serving, every processor
and consumer, and the alert evaluator; 4. Prometheus, which scrapes them all. Stopping
goes the other way: every client at once, then the servers of phase 1 (docs/decisions.md,
"local stack starts in phases").
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from driftline.binaries import ALERTMANAGER_NAMES, PROMETHEUS_NAMES, optional_binary
from driftline.embedded import (
    alertmanager_process,
    broker_process,
    prometheus_process,
    redis_process,
)
from driftline.monitoring import (
    ALERTMANAGER_CONFIG,
    missing_reason,
    prometheus_config,
    write_prometheus_config,
)
from driftline.ports import LOOPBACK, PortReservations
from driftline.processes import ManagedProcess, stop_all, wait_all_healthy
from driftline.settings import StackSettings
from schemas.admin import ensure_topics, make_admin, wait_for_broker
from schemas.redaction import redact_url
from schemas.settings import DataSettings, KafkaSettings, RedisSettings
from schemas.topics import all_topics
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings
from stream.settings import (
    DriftMergeSettings,
    DriftProcessorSettings,
    FeatureProcessorSettings,
    ShadowSettings,
    SloSettings,
)

#: What ``driftline retrain run`` prints once it consumes (its health check).
RETRAIN_READY = "retrain worker: consuming"
#: What ``driftline canary run`` prints once it consumes.
CANARY_READY = "canary controller: consuming"
#: Seconds serving, every processor and every consumer get to become healthy: imports
#: (MLflow, scikit-learn) and loading the champion, with all of them starting side by side
#: on a machine that may be busy.
SERVING_STARTUP_S = 120.0
#: The order ``endpoints`` are listed in, whatever order they became healthy in.
ENDPOINT_ORDER = (
    "kafka", "redis", "serving", "drift-processor", "drift-merge", "slo-processor", "features",
    "shadow-comparison", "alertmanager", "alert-evaluator", "retrain-worker",
    "canary-controller", "prometheus",
)  # fmt: skip
#: Processes the others talk to: stopped after every client has stopped.
SERVERS = frozenset({"broker", "redis", "alertmanager"})


@dataclass
class Endpoint:
    """One running part of the stack, for the status table."""

    name: str
    address: str
    origin: str  # "embedded" or "external"
    pid: int | None = None
    startup_s: float | None = None
    log: str | None = None
    #: ``host:port`` of its Prometheus /metrics when that is not its address (consumers).
    metrics: str | None = None


def scrape_targets(endpoints: list[Endpoint]) -> dict[str, str]:
    """Prometheus job -> ``host:port``: every HTTP endpoint, and every consumer's metrics."""
    return {
        ep.name: ep.metrics or urlsplit(ep.address).netloc
        for ep in endpoints
        if ep.metrics or ep.address.startswith("http://")
    }


@dataclass
class LocalStack:
    """Start, report and stop the local stack. Use as a context manager."""

    stack: StackSettings = field(default_factory=StackSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    drift: DriftProcessorSettings = field(default_factory=DriftProcessorSettings)
    #: The merge step, started only when ``drift.partitioned``.
    drift_merge: DriftMergeSettings = field(default_factory=DriftMergeSettings)
    slo: SloSettings = field(default_factory=SloSettings)
    features: FeatureProcessorSettings = field(default_factory=FeatureProcessorSettings)
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    endpoints: list[Endpoint] = field(default_factory=list)
    #: Parts not started, with the reason (e.g. a Debian package not installed).
    skipped: list[tuple[str, str]] = field(default_factory=list)
    alertmanager_url: str | None = None
    topics_created: list[str] = field(default_factory=list)
    champion_version: str | None = None
    _processes: list[ManagedProcess] = field(default_factory=list)
    #: Launched, not yet waited for: the process, its timeout, what to do once healthy.
    _launched: list[tuple[ManagedProcess, float, Callable[[float], None]]] = field(
        default_factory=list
    )
    #: Every port chosen for a child, held against other stacks on this machine until stop.
    _reservations: PortReservations = field(default_factory=PortReservations)

    def start(self) -> None:
        """Bring every part up and healthy, phase by phase, or stop what started and raise
        the first failure."""
        try:
            self._start_broker()
            self._start_redis()
            self._start_alertmanager()
            self._await_launched()
            self._prepare()
            self._start_serving()
            self._start_drift_processor()
            self._start_slo_processor()
            self._start_features_processor()
            self._start_shadow_comparison()
            self._start_alert_evaluator()
            self._start_retrain_worker()
            self._start_canary_controller()
            self._await_launched()
            self._start_prometheus()
            self._await_launched()
        except BaseException:
            self.stop()
            raise
        self.endpoints.sort(key=_declared_position)

    def _prepare(self) -> None:
        """Topics (needs the broker) and the champion (needs only the data dir) side by
        side: both must exist before serving and the processors start."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="topics") as pool:
            topics = pool.submit(self._ensure_topics)
            self._ensure_champion()
            topics.result()

    def _start_broker(self) -> None:
        if "bootstrap_servers" in self.kafka.model_fields_set:
            self.endpoints.append(Endpoint("kafka", self.kafka.bootstrap_servers, "external"))
            return
        port = self._port(self.stack.embedded_broker_port)
        proc = broker_process(port, self.stack.log_dir)
        bootstrap = f"{LOOPBACK}:{port}"
        self.kafka = self.kafka.model_copy(update={"bootstrap_servers": bootstrap})
        self._launch(proc, Endpoint("kafka", bootstrap, "embedded"))

    def _start_redis(self) -> None:
        if "url" in self.redis.model_fields_set:
            self.endpoints.append(Endpoint("redis", _redact_url(self.redis), "external"))
            return
        port = self._port(self.stack.embedded_redis_port)
        proc = redis_process(
            port,
            self.stack.log_dir,
            self.stack.data_dir / "redis",
            self.stack.embedded_redis_persist,
        )
        url = f"redis://{LOOPBACK}:{port}/0"
        self.redis = self.redis.model_copy(update={"url": SecretStr(url)})
        self._launch(proc, Endpoint("redis", url, "embedded"))

    def _ensure_topics(self) -> None:
        admin = make_admin(self.kafka)
        wait_for_broker(admin, self.stack.startup_timeout_s)
        report = ensure_topics(
            admin, all_topics(self.kafka.topic_prefix), self.kafka.replication_factor
        )
        self.topics_created = report.created

    def _ensure_champion(self) -> None:
        """Train and register the baseline when the served alias points nowhere.

        In this process, before serving starts: serving never trains (it must not import
        retrain), and the drift processor needs the champion's profile file.
        """
        from retrain.training import ensure_champion
        from schemas.model_registry import ModelStore

        store = ModelStore.from_settings(DataSettings(data_dir=self.stack.data_dir))
        self.champion_version = ensure_champion(
            store, self.serving.model_name, self.serving.model_alias
        )

    def _start_serving(self) -> None:
        """The prediction API, serving the champion."""
        port = self._port(self.serving.port)
        env = {
            **self.child_env(),
            "DRIFTLINE_DATA_DIR": str(self.stack.data_dir),
            "DRIFTLINE_SERVING_HOST": LOOPBACK,
            "DRIFTLINE_SERVING_PORT": str(port),
        }
        if self.kafka.topic_prefix:
            env["DRIFTLINE_KAFKA_TOPIC_PREFIX"] = self.kafka.topic_prefix
        url = f"http://{LOOPBACK}:{port}"
        proc = ManagedProcess(
            name="serving",
            argv=[sys.executable, "-m", "serving"],
            log_path=self.stack.log_dir / "serving.log",
            health=lambda: _http_ok(f"{url}/health"),
            env=env,
        )
        # Imports and loading the model from MLflow take longer than a server.
        timeout_s = max(self.stack.startup_timeout_s, SERVING_STARTUP_S)
        self._launch(proc, Endpoint("serving", url, "embedded"), timeout_s)

    def _start_drift_processor(self) -> None:
        """``driftline drift run`` on the profiles training wrote; healthy when /metrics answers.

        Started after the champion is ensured, so its profile file exists before the
        processor first looks for it (it caches "no profile" answers until restarted).
        In partitioned mode (``drift.partitioned``) it sends window partials instead of
        DriftScores, so the merge step starts next to it (same phase: the merge waits
        for the processors' progress reports on the topic, not for the processes).
        """
        data_dir = self.stack.data_dir.resolve()
        self._start_processor(
            "drift-processor",
            "drift",
            self.drift.metrics_port,
            {
                "DRIFTLINE_DRIFT_REFERENCE_PATH": str(data_dir / "profiles"),
                "DRIFTLINE_DRIFT_STATE_DIR": str(data_dir / "drift-state"),
                # The stack's decision, whatever the child would read from elsewhere.
                "DRIFTLINE_DRIFT_PARTITIONED": str(self.drift.partitioned).lower(),
            },
        )
        if self.drift.partitioned:
            self._start_drift_merge()

    def _start_drift_merge(self) -> None:
        """``driftline drift merge``: the drift processors' window partials become
        DriftScores, on the same profiles; healthy when /metrics answers."""
        data_dir = self.stack.data_dir.resolve()
        self._start_processor(
            "drift-merge",
            "drift",
            self.drift_merge.metrics_port,
            {
                "DRIFTLINE_DRIFT_REFERENCE_PATH": str(data_dir / "profiles"),
                "DRIFTLINE_DRIFT_MERGE_STATE_DIR": str(data_dir / "drift-merge-state"),
            },
            port_env="DRIFTLINE_DRIFT_MERGE_METRICS_PORT",
            subcommand="merge",
        )

    def _start_slo_processor(self) -> None:
        """``driftline slo run``: SloWindows and burn rates; healthy when /metrics answers."""
        data_dir = self.stack.data_dir.resolve()
        self._start_processor(
            "slo-processor",
            "slo",
            self.slo.metrics_port,
            {"DRIFTLINE_SLO_STATE_DIR": str(data_dir / "slo-state")},
        )

    def _start_features_processor(self) -> None:
        """``driftline features run``: feature views in Redis; healthy when /metrics answers."""
        self._start_processor("features", "features", self.features.metrics_port, {})

    def _start_shadow_comparison(self) -> None:
        """``driftline shadow run``: ShadowComparisons for the canary controller's shadow
        analysis; idle while no shadow is set; healthy when /metrics answers."""
        self._start_processor("shadow-comparison", "shadow", ShadowSettings().metrics_port, {})

    def _start_processor(
        self, name: str, command: str, metrics_port: int, env_extra: dict[str, str],
        port_env: str | None = None, subcommand: str = "run",
    ) -> None:  # fmt: skip
        """``python -m driftline <command> <subcommand>`` with its metrics on a free port
        near ``metrics_port`` (env ``port_env``, default ``DRIFTLINE_<COMMAND>_METRICS_PORT``)."""
        port = self._port(metrics_port)
        env = {
            **self.child_env(),
            "DRIFTLINE_DATA_DIR": str(self.stack.data_dir.resolve()),
            port_env or f"DRIFTLINE_{command.upper()}_METRICS_PORT": str(port),
            **env_extra,
        }
        if self.kafka.topic_prefix:
            env["DRIFTLINE_KAFKA_TOPIC_PREFIX"] = self.kafka.topic_prefix
        url = f"http://{LOOPBACK}:{port}/metrics"
        proc = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", "driftline", command, subcommand],
            log_path=self.stack.log_dir / f"{name}.log",
            health=lambda: _http_ok(url),
            env=env,
        )
        # Started side by side with the other Python processes: they share the CPU.
        timeout_s = max(self.stack.startup_timeout_s, SERVING_STARTUP_S)
        self._launch(proc, Endpoint(name, url, "embedded"), timeout_s)

    def _start_alertmanager(self) -> None:
        """Debian's Alertmanager with infra/alertmanager/alertmanager.yml, when installed."""
        reason = missing_reason("alertmanager")
        binary = optional_binary(ALERTMANAGER_NAMES)
        if reason is not None or binary is None:
            self.skipped.append(("alertmanager", reason or "not installed"))
            return
        port = self._port(self.stack.embedded_alertmanager_port)
        data_dir = self.stack.data_dir.resolve() / "alertmanager"
        proc = alertmanager_process(binary, port, ALERTMANAGER_CONFIG, data_dir, self.stack.log_dir)
        self.alertmanager_url = f"http://{LOOPBACK}:{port}"
        self._launch(proc, Endpoint("alertmanager", self.alertmanager_url, "embedded"))

    def _start_alert_evaluator(self) -> None:
        """``driftline alerts run``: to Alertmanager when it runs, else to the alerts topic."""
        env = {"DRIFTLINE_ALERTMANAGER_URL": self.alertmanager_url} if self.alertmanager_url else {}
        self._start_processor(
            "alert-evaluator", "alerts", self.alerting.metrics_port, env,
            port_env="DRIFTLINE_ALERTING_METRICS_PORT",
        )  # fmt: skip

    def _start_prometheus(self) -> None:
        """Debian's Prometheus scraping every service above on the ports they got."""
        reason = missing_reason("prometheus")
        binary = optional_binary(PROMETHEUS_NAMES)
        if reason is not None or binary is None:
            self.skipped.append(("prometheus", reason or "not installed"))
            return
        port = self._port(self.stack.embedded_prometheus_port)
        targets = scrape_targets(self.endpoints)
        targets["prometheus"] = f"{LOOPBACK}:{port}"
        alertmanager = urlsplit(self.alertmanager_url).netloc if self.alertmanager_url else None
        data_dir = self.stack.data_dir.resolve() / "prometheus"
        config = write_prometheus_config(
            data_dir / "prometheus.yml", prometheus_config(targets, alertmanager)
        )
        proc = prometheus_process(binary, port, config, data_dir / "tsdb", self.stack.log_dir)
        self._launch(proc, Endpoint("prometheus", f"http://{LOOPBACK}:{port}", "embedded"))

    def _start_retrain_worker(self) -> None:
        """``driftline retrain run``: RetrainRequests (``POST /models/train``, alerts) become
        MLflow runs and, past the gate, canaries."""
        from retrain.settings import RetrainSettings

        settings = RetrainSettings()
        self._start_consumer(
            "retrain-worker", "retrain", RETRAIN_READY, settings.group_id, settings.metrics_port
        )

    def _start_canary_controller(self) -> None:
        """``driftline canary run``: canaries stepped up, promoted or rolled back on
        ``slo.windows``."""
        from retrain.settings import CanaryAnalysisSettings

        settings = CanaryAnalysisSettings()
        self._start_consumer(
            "canary-controller", "canary", CANARY_READY, settings.group_id, settings.metrics_port
        )

    def _start_consumer(
        self, name: str, command: str, ready: str, group: str, metrics_port: int
    ) -> None:
        """A ``driftline <command> run`` consumer: healthy once its log (this start's part
        of it) says it consumes; its /metrics on a free port near ``metrics_port``."""
        data_dir = self.stack.data_dir.resolve()
        port = self._port(metrics_port)
        env = {
            **self.child_env(),
            "DRIFTLINE_DATA_DIR": str(data_dir),
            f"DRIFTLINE_{command.upper()}_METRICS_PORT": str(port),
        }
        if self.kafka.topic_prefix:
            env["DRIFTLINE_KAFKA_TOPIC_PREFIX"] = self.kafka.topic_prefix
        log_path = self.stack.log_dir / f"{name}.log"
        start = log_path.stat().st_size if log_path.exists() else 0
        proc = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", "driftline", command, "run"],
            log_path=log_path,
            health=lambda: _log_has(log_path, start, ready),
            env=env,
        )
        # Imports (MLflow, scikit-learn) take a few seconds on a busy machine.
        endpoint = Endpoint(
            name, f"consumer group {group}", "embedded", metrics=f"{LOOPBACK}:{port}"
        )
        self._launch(proc, endpoint, max(self.stack.startup_timeout_s, SERVING_STARTUP_S))

    def _launch(
        self, proc: ManagedProcess, endpoint: Endpoint, timeout_s: float | None = None
    ) -> None:
        """Start ``proc``; :meth:`_await_launched` waits for it and then lists ``endpoint``
        with its pid, log and time from launch to healthy."""
        self._processes.append(proc)
        proc.start()

        def healthy(took: float) -> None:
            endpoint.pid, endpoint.startup_s, endpoint.log = proc.pid, took, str(proc.log_path)
            self.endpoints.append(endpoint)

        self._launched.append((proc, timeout_s or self.stack.startup_timeout_s, healthy))

    def _port(self, preferred: int) -> int:
        """A free port for a child, never one already given to a sibling (children of one
        phase choose their ports before any of them has bound its own) nor one another
        stack on this machine has chosen and not yet bound: reserved until :meth:`stop`."""
        return self._reservations.reserve(preferred)

    def _await_launched(self) -> None:
        """Wait for every process launched since the last call, side by side.

        :raises ServiceUnhealthyError: the first one that exited or timed out.
        """
        launched, self._launched = self._launched, []
        took = wait_all_healthy([(proc, timeout_s) for proc, timeout_s, _ in launched])
        for (_, _, healthy), seconds in zip(launched, took, strict=True):
            healthy(seconds)

    def child_env(self) -> dict[str, str]:
        """Environment that points a Driftline process at this stack."""
        return {
            "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "DRIFTLINE_REDIS_URL": self.redis.url.get_secret_value(),
        }

    def operator_env(self) -> dict[str, str]:
        """Environment that points the operator commands (``driftline health``, ``backup``,
        ``restore``, ``validate-models``) at this stack: the addresses it chose, which
        differ from the defaults when a preferred port was busy."""
        env = {**self.child_env(), "DRIFTLINE_DATA_DIR": str(self.stack.data_dir.resolve())}
        if self.kafka.topic_prefix:
            env["DRIFTLINE_KAFKA_TOPIC_PREFIX"] = self.kafka.topic_prefix
        if self.drift.partitioned:  # `driftline health` then probes the merge step too
            env["DRIFTLINE_DRIFT_PARTITIONED"] = "true"
        port_variables = {
            "serving": "DRIFTLINE_SERVING_PORT",
            "drift-processor": "DRIFTLINE_DRIFT_METRICS_PORT",
            "drift-merge": "DRIFTLINE_DRIFT_MERGE_METRICS_PORT",
            "slo-processor": "DRIFTLINE_SLO_METRICS_PORT",
            "features": "DRIFTLINE_FEATURES_METRICS_PORT",
            "shadow-comparison": "DRIFTLINE_SHADOW_METRICS_PORT",
            "alert-evaluator": "DRIFTLINE_ALERTING_METRICS_PORT",
            "retrain-worker": "DRIFTLINE_RETRAIN_METRICS_PORT",
            "canary-controller": "DRIFTLINE_CANARY_METRICS_PORT",
        }
        for ep in self.endpoints:
            variable = port_variables.get(ep.name)
            address = f"http://{ep.metrics}" if ep.metrics else ep.address
            port = urlsplit(address).port if address.startswith("http://") else None
            if variable is not None and port is not None:
                env[variable] = str(port)
            if ep.name == "prometheus":
                env["DRIFTLINE_PROMETHEUS_URL"] = ep.address
        if self.alertmanager_url:
            env["DRIFTLINE_ALERTMANAGER_URL"] = self.alertmanager_url
        return env

    def stop(self) -> None:
        """Stop every started process: all clients at once, then the servers they talk to
        (broker, Redis, Alertmanager), so no client logs connection errors while it shuts
        down; then give the ports back. Safe to call twice."""
        clients = [p for p in self._processes if p.name not in SERVERS]
        stop_all(clients)
        self._processes[:] = [p for p in self._processes if p.name in SERVERS]
        stop_all(self._processes)
        self._processes.clear()
        self._reservations.release()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _declared_position(endpoint: Endpoint) -> int:
    """Where ``endpoint`` goes in the status table: :data:`ENDPOINT_ORDER`, unknown last."""
    if endpoint.name in ENDPOINT_ORDER:
        return ENDPOINT_ORDER.index(endpoint.name)
    return len(ENDPOINT_ORDER)


def _http_ok(url: str) -> bool:
    """True when ``url`` answers 200 (serving's /health, the processors' /metrics)."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _log_has(path: Path, offset: int, marker: str) -> bool:
    """True once ``marker`` appears in ``path`` after byte ``offset`` (this start's output)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return marker.encode() in handle.read()
    except OSError:
        return False


def _redact_url(settings: RedisSettings) -> str:
    """The Redis URL without its password, for display."""
    return redact_url(settings.url.get_secret_value())


class StopRequested:
    """Turns SIGINT/SIGTERM into an event the launcher waits on.

    The handler only sets a flag; the stopping itself happens in normal code after the
    wait returns, so a second Ctrl-C cannot interrupt a half-finished shutdown.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    def wait(self, watched: list[ManagedProcess] | None = None, poll_s: float = 0.5) -> str:
        """Wait for a signal or for a watched process to die; say which."""
        while not self.event.wait(poll_s):
            for proc in watched or []:
                if not proc.is_running():
                    return f"{proc.name} exited unexpectedly (log {proc.log_path})"
        return self.signal_name or "stop requested"
