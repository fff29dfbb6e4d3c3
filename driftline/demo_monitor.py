"""What ``make demo`` shows, read from the topics the loop writes: nothing is asked of the
processes themselves, so the demo sees exactly what any other consumer would.

A :class:`LoopMonitor` thread reads ``drift.scores``, ``slo.windows``, ``alerts``,
``retrain.requests`` and ``model.deployments`` from the beginning and folds every record
into a :class:`LoopState`: the recent windows, the alerts, the rollout, and a timeline of
the stages of the loop (drift detected, alert, retrain, MLflow run, canary, promotion)
with the time each was first seen.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    TopicPartition,
)

from schemas.codec import Codec, make_codec
from schemas.exceptions import DriftlineError
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import (
    ALERTS,
    DRIFT_SCORES,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
    TopicSpec,
)

#: The loop's stages, in the order they happen; the demo succeeds when all were seen.
STAGES: Final = ("drift detected", "alert", "retrain", "MLflow run", "canary", "promotion")
WATCHED: Final = (DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS, MODEL_DEPLOYMENTS)


@dataclass(frozen=True)
class Milestone:
    """A stage of the loop, when the demo first saw it, and what it was."""

    stage: str
    at: float  # time.time()
    detail: str


@dataclass
class LoopState:
    """Everything the live view and the summary show. Guarded by ``lock``."""

    model_name: str
    drift_windows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    slo: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> latest window
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> alert
    rollout: dict[str, Any] = field(default_factory=dict)  # latest DeploymentEvent
    milestones: dict[str, Milestone] = field(default_factory=dict)
    #: Records whose model is not the demo's, or that could not be decoded.
    ignored: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Looks up the MLflow run of a model version (``ModelStore.run_id``).
    run_of: Callable[[str, str], str | None] | None = None
    _now: float | None = field(default=None, repr=False)

    def reached(self, stage: str, detail: str) -> None:
        """Record ``stage`` the first time it is seen, at the time its record was written."""
        if stage not in self.milestones:
            self.milestones[stage] = Milestone(stage, self._now or time.time(), detail)

    def complete(self) -> bool:
        return all(stage in self.milestones for stage in STAGES)

    def timeline(self) -> list[Milestone]:
        """The stages seen, in the order they happened (ties: the loop's order)."""
        return sorted(self.milestones.values(), key=lambda m: (m.at, STAGES.index(m.stage)))

    def missing(self) -> list[str]:
        return [stage for stage in STAGES if stage not in self.milestones]

    def apply(self, topic: TopicSpec, record: dict[str, Any], at: float | None = None) -> None:
        """Fold one decoded record into the state; ``at``: when it was written (the Kafka
        timestamp, seconds), so stages read from different topics keep their real order."""
        self._now = at
        if record.get("model_name", self.model_name) != self.model_name:
            self.ignored += 1
            return
        handler = {
            DRIFT_SCORES.name: self._drift,
            SLO_WINDOWS.name: self._slo,
            ALERTS.name: self._alert,
            RETRAIN_REQUESTS.name: self._retrain,
            MODEL_DEPLOYMENTS.name: self._deployment,
        }[topic.name]
        handler(record)

    def _drift(self, record: dict[str, Any]) -> None:
        if record.get("window_kind", "tumbling") != "tumbling":
            return
        self.drift_windows.append(record)
        if record.get("drifted"):
            drifted = {f["feature"] for f in record.get("features") or [] if f.get("drifted")}
            self.reached(
                "drift detected",
                f"v{record.get('model_version')} window score {record['drift_score']:.2f}, "
                f"{len(drifted)} features drifted",
            )

    def _slo(self, record: dict[str, Any]) -> None:
        self.slo[str(record.get("variant"))] = record

    def _alert(self, record: dict[str, Any]) -> None:
        self.alerts[str(record["fingerprint"])] = record
        if record.get("state") == "firing":
            self.reached("alert", f"{record['alert_name']} ({record.get('severity')}) firing")

    def _retrain(self, record: dict[str, Any]) -> None:
        self.reached(
            "retrain", f"RetrainRequest trigger {record.get('trigger')}, urgency "
            f"{record.get('urgency')}",
        )  # fmt: skip

    def _deployment(self, record: dict[str, Any]) -> None:
        self.rollout = record
        action = record.get("action")
        canary = record.get("canary_version")
        if action == "canary_started" and canary:
            run_id = self.run_of(self.model_name, str(canary)) if self.run_of else None
            self.reached("MLflow run", f"run {run_id or '?'} registered version {canary}")
            self.reached("canary", f"version {canary} at {record['canary_share']:.0%}")
        elif action == "promoted":
            self.reached("promotion", f"version {record.get('champion_version')} is the champion")


class LoopMonitor:
    """Reads the watched topics into ``state`` in a thread until :meth:`stop`."""

    def __init__(self, kafka: KafkaSettings, state: LoopState, codec: Codec | None = None):
        self.kafka = kafka
        self.state = state
        self.codec = codec or make_codec()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-monitor", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> LoopMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        prefix = self.kafka.topic_prefix
        specs = {spec.prefixed(prefix).name: spec for spec in WATCHED}
        group = f"driftline-demo-{uuid.uuid4().hex[:8]}"
        consumer = Consumer(consumer_config(self.kafka, group))
        consumer.assign(
            [TopicPartition(name, p, OFFSET_BEGINNING)
             for name, spec in specs.items() for p in range(spec.partitions)]
        )  # fmt: skip
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(num_messages=500, timeout=0.2):
                    if msg.error() is not None or msg.value() is None:
                        continue
                    try:
                        record = self.codec.decode(msg.value() or b"").value
                    except DriftlineError:
                        self.state.ignored += 1
                        continue
                    kind, stamp = msg.timestamp()
                    at = stamp / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else None
                    with self.state.lock:
                        self.state.apply(specs[msg.topic() or ""], record, at)
        except KafkaException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.close()
