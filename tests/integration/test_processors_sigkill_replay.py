"""Drift and SLO processors SIGKILLed again and again during a replay: nothing lost, no
window twice, no alert twice.

A replay of 2 models x 10 one-minute windows (shifted features and 10 % server errors
from window 4, so drift is flagged and SLO alerts fire) is produced in chunks. After
each chunk both processors (real ``driftline drift run`` / ``driftline slo run``
subprocesses) run until they have emitted something new, then each is SIGKILLed after a
seeded random delay and started again: ``KILLS`` (10, as the issue asks) times each.
Then both run to the end. The alert evaluator (in a thread) reads their outputs the
whole time and posts to a real Alertmanager.

What must hold: every expected window (drift: tumbling and sliding; SLO: per variant)
is on its topic, none is missing, and every copy of one natural key is identical, so
de-duplicated by key each window appears exactly once (at-least-once delivery: only a
kill between a flush and its commit can repeat a window). The evaluator turns the
repeats into nothing: each alert identity fires once on the ``alerts`` topic, and
Alertmanager lists each alert once.

A restart after SIGKILL waits out the dead member's session before the broker assigns
the partitions again (measured on the embedded broker: about twice the session timeout
minus one second; 11 s with the 6 s default). The processors here run with a 2 s
session (``DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS``), so a restart is assigned in ~4 s and
ten kills each take 70-220 s on the shared machine; marked ``reliability``
(``make test-reliability``, not ``make test``; docs/reliability.md).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from stream.alerting.app import build_alert_loop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from tests.integration.alerting_helpers import AlertmanagerServer
from tests.integration.cli_processes import ROOT, CliProcess, wait_until
from tests.integration.test_drift_processor_support import breast_cancer, produce, write_profiles

CODEC = SingleObjectCodec()
MIN = 60_000
MODELS = ["crash-a", "crash-b"]
WINDOWS = 10
PER_WINDOW = 150
KILLS = WINDOWS  # one kill of each processor per chunk that closes a window
SEED = 20261130
#: The processors' consumer-group session: short, so a SIGKILLed member expires quickly
#: (a restart is assigned after ~2 x this - 1 s on the embedded broker, docs/decisions.md).
SESSION_MS = 2000
#: Only stops a broken run.
BOUND_S = 120

#: Above the 300 s default so a stuck run ends in its own diagnostic, not a bare timeout.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(480)]


def _events(t0: int) -> list[list[tuple[str, bytes]]]:
    """The replay, one chunk per window (chunk w holds window w: it closes window w-1)."""
    rng = np.random.default_rng(SEED)
    x, names = breast_cancer()
    chunks: list[list[tuple[str, bytes]]] = []
    for w in range(WINDOWS + 1):
        chunk: list[tuple[str, bytes]] = []
        for m in MODELS:
            n = PER_WINDOW if w < WINDOWS else 1  # the last chunk only closes window 9
            rows = x[rng.integers(0, len(x), n)].copy()
            if w >= 4:
                rows[:, :5] += 2.0 * x[:, :5].std(axis=0)
            times = t0 + w * MIN + np.sort(rng.integers(0, MIN, n))
            failed = rng.random(n) < (0.1 if w >= 4 else 0.0)
            for i in range(n):
                value = {
                    "event_id": f"{m}-{w}-{i}", "request_id": f"{m}-{w}-{i}",
                    "event_time": int(times[i]), "model_name": m, "model_version": "1",
                    "variant": "baseline", "features": dict(zip(names, rows[i].tolist(),
                                                                strict=True)),
                    "categorical_features": {}, "prediction": 1.0, "probabilities": {},
                    "latency_ms": 5.0 + i % 20,
                    "outcome": "server_error" if failed[i] else "ok",
                    "error_type": "Boom" if failed[i] else None, "entity_id": None,
                    "trace_id": None, "source": "replay",
                }  # fmt: skip
                chunk.append((m, CODEC.encode(INFERENCE_EVENT, value)))
        chunks.append(chunk)
    return chunks


class Outputs:
    """Every record on one output topic so far, read incrementally."""

    def __init__(self, settings: KafkaSettings, topic: str, partitions: int) -> None:
        self.consumer = Consumer(consumer_config(settings, f"crash-read-{time.monotonic_ns()}"))
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.records: list[dict[str, Any]] = []

    def poll(self) -> int:
        for msg in self.consumer.consume(num_messages=1000, timeout=0.1):
            if msg.error() is None:
                self.records.append(CODEC.decode(msg.value() or b"").value)
        return len(self.records)

    def close(self) -> None:
        self.consumer.close()


def _env(settings: KafkaSettings, kind: str, tmp: Path, profiles: Path) -> dict[str, str]:
    prefix = f"DRIFTLINE_{kind.upper()}_"
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_MS),
        "DRIFTLINE_KAFKA_HEARTBEAT_INTERVAL_MS": str(SESSION_MS // 10),
        prefix + "GROUP_ID": f"crash-{kind}",
        prefix + "STATE_DIR": str(tmp / f"{kind}-state"),
        prefix + "METRICS_PORT": "0",
        prefix + "POLL_TIMEOUT_S": "0.2",
        prefix + "BATCH_SIZE": "100",
        prefix + "COMMIT_INTERVAL_S": "0",
        prefix + "ALLOWED_LATENESS_S": "0",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",  # the banner reaches the log at once (CliProcess.started)
    }
    if kind == "drift":
        env |= {"DRIFTLINE_DRIFT_REFERENCE_PATH": str(profiles),
                "DRIFTLINE_DRIFT_FEEDBACK_JOIN": "false"}  # fmt: skip
    return env


def _diagnose(proc: CliProcess, out: Outputs, tmp: Path) -> str:
    """The processor's log, checkpoints, what it emitted, and its group as the broker sees
    it (members and their assignments: tells a stuck group from a stuck processor)."""
    states = [f"{p.name}: {p.read_text()}" for p in sorted(tmp.rglob("*-state/*/*.json"))]
    seen = sorted((r["model_name"], r.get("window_kind"), r["window_start"]) for r in out.records)
    group = proc.group
    try:
        admin = AdminClient({"bootstrap.servers": proc.env["DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS"]})
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        members = [(m.client_id, m.host, [tp.partition for tp in m.assignment.topic_partitions])
                   for m in described.members]  # fmt: skip
        broker_view = f"group {group}: state {described.state}, members {members}"
    except Exception as exc:  # a diagnostic must not hide the failure it describes
        broker_view = f"group {group}: not described ({exc!r})"
    return "\n".join([proc.tail(), *states, str(seen), broker_view])


def _natural_drift(s: dict[str, Any]) -> tuple[Any, ...]:
    return (s["model_name"], s["model_version"], s["window_kind"], s["window_start"])


def _natural_slo(s: dict[str, Any]) -> tuple[Any, ...]:
    return (s["model_name"], s["variant"], s["window_start"])


def test_sigkilled_processors_lose_no_window_repeat_none_and_alert_once(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    alertmanager: AlertmanagerServer,
    tmp_path: Path,
) -> None:
    events, scores_topic, windows_topic, alerts_topic, *_ = make_topics(
        INFERENCE_EVENTS,
        DRIFT_SCORES,
        SLO_WINDOWS,
        ALERTS,
        RETRAIN_REQUESTS,
        DEAD_LETTERS,
        MODEL_DEPLOYMENTS,
    )
    t0 = (round(time.time() * 1000) // MIN - WINDOWS - 3) * MIN
    chunks = _events(t0)
    profiles = write_profiles(tmp_path / "profiles", MODELS)
    drift, slo = (
        CliProcess(kind, [kind, "run"], _env(kafka_settings, kind, tmp_path, profiles),
                   tmp_path / f"{kind}.log", group=f"crash-{kind}")
        for kind in ("drift", "slo")
    )  # fmt: skip
    scores = Outputs(kafka_settings, scores_topic, DRIFT_SCORES.partitions)
    windows = Outputs(kafka_settings, windows_topic, SLO_WINDOWS.partitions)
    evaluator = build_alert_loop(
        kafka_settings,
        AlertingSettings(group_id="crash-alerts", poll_timeout_s=0.2),
        AlertmanagerSettings(url=alertmanager.url, resend_interval_s=2.0, backoff_max_s=1.0),
    )
    evaluating = threading.Thread(target=evaluator.run, daemon=True)
    evaluating.start()
    rng = np.random.default_rng(SEED)
    pairs = [(drift, scores), (slo, windows)]
    try:
        produce(kafka_settings, events, chunks[0])
        for proc, _ in pairs:
            proc.start()
        for k in range(KILLS):
            # Counted before the chunk goes out: counted after, a fast processor may have
            # emitted all the chunk closes already, and nothing newer would ever come.
            befores = [out.poll() for _, out in pairs]
            produce(kafka_settings, events, chunks[1 + k])
            for (proc, out), before in zip(pairs, befores, strict=True):
                # something new came out of this run, then a seeded random moment later: kill
                progressed = wait_until(lambda o=out, b=before: o.poll() > b, BOUND_S)  # type: ignore[misc]
                assert progressed, _diagnose(proc, out, tmp_path)
                time.sleep(float(rng.uniform(0.0, 0.4)))
                proc.kill()
                proc.start()
        for chunk in chunks[1 + KILLS :]:
            produce(kafka_settings, events, chunk)
        drift_keys = {(m, "1", "tumbling", t0 + w * MIN) for m in MODELS for w in range(WINDOWS)}
        # sliding (15 min, every minute) windows end every minute while they hold a window
        drift_keys |= {(m, "1", "sliding", t0 + (e - 15) * MIN)
                       for m in MODELS for e in range(1, WINDOWS + 15)
                       if t0 + e * MIN <= t0 + WINDOWS * MIN}  # fmt: skip
        slo_keys = {(m, "baseline", t0 + w * MIN) for m in MODELS for w in range(WINDOWS)}
        for keys, natural, out, proc in ((drift_keys, _natural_drift, scores, drift),
                                         (slo_keys, _natural_slo, windows, slo)):  # fmt: skip
            done = wait_until(lambda k=keys, n=natural, o=out: o.poll() >= 0  # type: ignore[misc]
                         and {n(r) for r in o.records} >= k, BOUND_S)  # fmt: skip
            missing = sorted(keys - {natural(r) for r in out.records})
            assert done, f"{proc.name}: missing {[(k[0], k[-2:]) for k in missing]}\n" + _diagnose(
                proc, out, tmp_path
            )
        # the evaluator caught up with both topics: each model's error-rate alert is listed
        for m in MODELS:
            assert alertmanager.wait_for(True, alertname="ServingErrorRateHigh", model=m)
        for proc, _ in pairs:  # the last restart may have had nothing left to do
            assert wait_until(proc.started, BOUND_S), proc.tail()
        time.sleep(1.0)  # one more evaluator poll over any late repeat, then count
        scores.poll()
        windows.poll()
    finally:
        codes = [proc.stop() for proc, _ in pairs]
        evaluator.stop()
        evaluating.join(30)
        scores.close()
        windows.close()
    assert codes == [0, 0], (drift.tail(), slo.tail())
    assert drift.kills == slo.kills == KILLS

    for records, natural, want in ((scores.records, _natural_drift, drift_keys),
                                   (windows.records, _natural_slo, slo_keys)):  # fmt: skip
        copies: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for record in records:
            copies.setdefault(natural(record), []).append(record)
        assert set(copies) == want, f"missing {want - set(copies)}, extra {set(copies) - want}"
        differing = [key for key, same in copies.items() if any(c != same[0] for c in same)]
        assert not differing, f"repeats that differ from the first copy: {differing[:3]}"
    tumbling = [s for s in scores.records if s["window_kind"] == "tumbling"]
    assert {s["event_count"] for s in tumbling} == {PER_WINDOW}
    assert {w["request_count"] for w in windows.records} == {PER_WINDOW}

    consumer = Consumer(consumer_config(kafka_settings, f"crash-alerts-{time.monotonic_ns()}"))
    consumer.assign([TopicPartition(alerts_topic, 0, 0)])
    alert_records: list[dict[str, Any]] = []
    while batch := consumer.consume(num_messages=1000, timeout=1.0):
        alert_records += [CODEC.decode(m.value() or b"").value for m in batch if not m.error()]
    consumer.close()
    firing = Counter((a["fingerprint"], a["state"]) for a in alert_records)
    assert firing, "no Alert record: the evaluator saw nothing"
    assert set(firing.values()) == {1}, f"an alert transition recorded twice: {firing}"
    listed = Counter(tuple(sorted(a["labels"].items())) for a in alertmanager.alerts())
    assert listed and set(listed.values()) == {1}, listed
