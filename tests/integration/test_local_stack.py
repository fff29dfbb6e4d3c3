"""The local stack: `make up` as a user runs it, and LocalStack with external parts."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
import redis
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from driftline.ports import accepts_connections, choose_port, port_is_free
from driftline.settings import StackSettings
from driftline.stack import LocalStack
from schemas.admin import make_admin
from schemas.breast_cancer import load_split
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import DRIFT_SCORES, INFERENCE_EVENTS, all_topics
from stream.settings import DriftMergeSettings, DriftProcessorSettings
from tests.integration.test_drift_processor_support import (
    MODEL,
    T0,
    breast_cancer,
    event,
    produce,
    read_scores,
    window_events,
)

REPO = Path(__file__).resolve().parents[2]
BANNER = b"Driftline local stack is up."


def _read_until(fd: int, marker: bytes, timeout_s: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout_s
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            return out
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return out
        if not chunk:
            return out
        out += chunk


def test_make_up_serves_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C in the terminal: exit code 0, no orphan processes, ports freed."""
    env = {
        **os.environ,
        "DRIFTLINE_EMBEDDED_BROKER_PORT": "0",
        "DRIFTLINE_EMBEDDED_REDIS_PORT": "0",
        # Random metrics ports: another stack on this machine may take a default one
        # (9103, 9104, 9105) the moment ours frees it, which the freed-port checks see.
        "DRIFTLINE_DRIFT_METRICS_PORT": "0",
        "DRIFTLINE_SLO_METRICS_PORT": "0",
        "DRIFTLINE_ALERTING_METRICS_PORT": "0",
        "DRIFTLINE_FEATURES_METRICS_PORT": "0",
        "DRIFTLINE_DATA_DIR": str(tmp_path),
        "COLUMNS": "200",
    }
    for var in ("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_REDIS_URL", "MAKEFLAGS"):
        env.pop(var, None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal session running `make up`, as a user would
        os.chdir(REPO)
        os.execvpe("make", ["make", "--no-print-directory", "up"], env)  # noqa: S606
    try:
        out = _read_until(fd, BANNER, timeout_s=180)
        assert BANNER in out, out.decode(errors="replace")
        text = out.decode(errors="replace")
        bootstrap = re.search(r"DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS=(\S+)", text)
        redis_url = re.search(r"DRIFTLINE_REDIS_URL=(\S+)", text)
        assert bootstrap and redis_url, text

        # Both really answer, and every declared topic exists.
        kafka = KafkaSettings(bootstrap_servers=bootstrap.group(1))
        topics = make_admin(kafka).list_topics(timeout=10).topics
        assert {s.name for s in all_topics()} <= set(topics)
        client = redis.Redis.from_url(redis_url.group(1))
        assert client.ping()
        client.close()
        ports = [
            int(bootstrap.group(1).rsplit(":", 1)[1]),
            int(redis_url.group(1).split(":")[2].split("/")[0]),
        ]
        serving = re.search(r"serving\W+(http://[\d.]+:\d+)", text)
        assert serving, text
        # On a fresh data dir the launcher trained the baseline; it answers predictions.
        row = [float(v) for v in load_split().x_validation[0]]
        answer = httpx.post(f"{serving.group(1)}/predict", json={"features": row}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == "breast-cancer-classifier"
        ports.append(int(serving.group(1).rsplit(":", 1)[1]))
        # The drift processor runs on the profile training wrote; its metrics answer.
        drift = re.search(r"drift-processor\W+(http://[\d.]+:(\d+)/metrics)", text)
        assert drift, text
        metrics = httpx.get(drift.group(1), timeout=10)
        assert metrics.status_code == 200, metrics.text
        assert "driftline_drift_" in metrics.text
        drift_port = int(drift.group(2))
        # The SLO processor runs next to it; its metrics answer too.
        slo = re.search(r"slo-processor\W+(http://[\d.]+:(\d+)/metrics)", text)
        assert slo, text
        metrics = httpx.get(slo.group(1), timeout=10)
        assert metrics.status_code == 200, metrics.text
        assert "driftline_slo_" in metrics.text
        slo_port = int(slo.group(2))
        # The features processor keeps the feature views in Redis; its metrics answer.
        features = re.search(r"features\W+(http://[\d.]+:(\d+)/metrics)", text)
        assert features, text
        assert "driftline_feature_" in httpx.get(features.group(1), timeout=10).text
        assert (tmp_path / "profiles" / "breast-cancer-classifier" / "1.json").is_file()
        # The alert evaluator runs; Alertmanager and Prometheus when installed, else skipped.
        alerting = re.search(r"alert-evaluator\W+(http://[\d.]+:(\d+)/metrics)", text)
        assert alerting, text
        assert "driftline_alerting_" in httpx.get(alerting.group(1), timeout=10).text
        # The shadow comparison job runs (idle without a shadow); its metrics answer.
        shadow = re.search(r"shadow-comparison\W+(http://[\d.]+:(\d+)/metrics)", text)
        assert shadow, text
        assert "driftline_shadow_" in httpx.get(shadow.group(1), timeout=10).text
        metrics_ports = [int(alerting.group(2)), int(features.group(2)), int(shadow.group(2))]
        for name, binary, path in [
            ("alertmanager", "prometheus-alertmanager", "/api/v2/status"),
            ("prometheus", "prometheus", "/api/v1/targets"),
        ]:
            if shutil.which(binary) is None:
                assert f"skipped {name}: {binary} not on PATH" in text, text
                continue
            found = re.search(rf"{name}\W+(http://[\d.]+:(\d+))", text)
            assert found, text
            assert httpx.get(found.group(1) + path, timeout=10).status_code == 200
            ports.append(int(found.group(2)))
        # The retrain worker consumes retrain.requests (its readiness line is in its log).
        assert re.search(r"retrain-worker\W+consumer group driftline-retrain", text), text
        assert "retrain worker: consuming" in (tmp_path / "logs" / "retrain-worker.log").read_text()
        assert re.search(r"canary-controller\W+consumer group driftline-canary", text), text
        servers = [p for p in psutil.Process(pid).children(recursive=True) if p.name() != "bash"]
        # launcher, broker, redis, serving, drift processor, SLO processor
        assert len(servers) >= 6, [p.name() for p in servers]
        # Every server of the local stack listens on loopback only.
        listening = [
            (proc.name(), conn.laddr)
            for proc in servers
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        ]
        assert listening, "no listening sockets found"
        exposed = [(name, addr) for name, addr in listening if addr.ip not in ("127.0.0.1", "::1")]
        assert not exposed, f"listening beyond loopback: {exposed}"

        os.write(fd, b"\x03")  # Ctrl-C, delivered by the terminal to its foreground group
        _, status = os.waitpid(pid, 0)
        tail = _drain(fd).decode(errors="replace")
    except BaseException:
        os.kill(pid, 9)
        raise
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, tail
    assert "stopped cleanly" in tail
    assert "Interrupt" not in tail, "make itself must not be interrupted"
    assert not [p for p in servers if _alive(p)], "orphan processes survived"
    assert all(port_is_free(port) for port in ports), [(p, port_is_free(p)) for p in ports]
    # The metrics server closes each HTTP connection itself, so its port sits in TIME_WAIT
    # for a minute and cannot be bound without SO_REUSEADDR; freed means nobody listens.
    assert not accepts_connections(drift_port)
    assert not accepts_connections(slo_port)
    assert not any(accepts_connections(port) for port in metrics_ports)


def test_external_kafka_is_used_as_is(
    kafka_settings: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured Kafka gets topics but no embedded broker is started next to it."""
    monkeypatch.delenv("DRIFTLINE_REDIS_URL", raising=False)
    stack = LocalStack(
        stack=StackSettings(data_dir=tmp_path, embedded_redis_port=0),
        kafka=kafka_settings,
        redis=RedisSettings(),
    )
    with stack:
        kafka, redis_ep, serving_ep, drift_ep, slo_ep = stack.endpoints[:5]
        by_name = {ep.name: ep for ep in stack.endpoints}
        assert (serving_ep.name, serving_ep.origin) == ("serving", "embedded")
        assert (drift_ep.name, drift_ep.origin) == ("drift-processor", "embedded")
        assert httpx.get(drift_ep.address, timeout=10).status_code == 200
        assert (slo_ep.name, slo_ep.origin) == ("slo-processor", "embedded")
        assert httpx.get(slo_ep.address, timeout=10).status_code == 200
        assert by_name["retrain-worker"].origin == "embedded"
        assert (kafka.origin, kafka.pid) == ("external", None)
        assert kafka.address == kafka_settings.bootstrap_servers
        assert redis_ep.origin == "embedded"
        topics = make_admin(kafka_settings).list_topics(timeout=10).topics
        assert {s.name for s in all_topics(kafka_settings.topic_prefix)} <= set(topics)
        embedded_redis_port = int(redis_ep.address.split(":")[2].split("/")[0])
        assert not port_is_free(embedded_redis_port)
    assert port_is_free(embedded_redis_port)
    assert choose_port(embedded_redis_port) == embedded_redis_port  # reservation given back


def test_external_redis_is_not_started(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    external = RedisSettings(url=SecretStr("redis://user:pw@127.0.0.1:1/0"))
    stack = LocalStack(stack=StackSettings(data_dir=tmp_path), kafka=kafka_settings, redis=external)
    with stack:
        origins = [e.origin for e in stack.endpoints]
        assert origins[:5] == ["external", "external", "embedded", "embedded", "embedded"]
        assert set(origins[5:]) <= {"embedded"}
        assert {"retrain-worker", "canary-controller"} <= {e.name for e in stack.endpoints}
        assert stack.endpoints[1].address == "redis://user:***@127.0.0.1:1/0"


class DriftStack(LocalStack):
    """What partitioned drift needs, started by the launcher's own code and phases:
    broker (external), Redis, topics and the champion, then the drift processor (and,
    in partitioned mode, the merge step next to it)."""

    def start(self) -> None:
        try:
            self._start_broker()
            self._start_redis()
            self._await_launched()
            self._prepare()
            self._start_drift_processor()
            self._await_launched()
        except BaseException:
            self.stop()
            raise


def _samples(url: str, name: str) -> dict[str, float]:
    """``name``'s samples on a /metrics page, by their labels' values joined with ','."""
    text = httpx.get(url, timeout=10).text
    return {
        ",".join(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_partitioned_drift_starts_the_merge_step_whose_drift_scores_arrive(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unique: Callable[[str], str],
) -> None:
    """DRIFTLINE_DRIFT_PARTITIONED=true: the launcher starts `driftline drift merge` next to
    the drift processor, wired to the same topics and profiles. Events keyed by request id
    (spread over every partition) come out as one merged DriftScore per window, counted
    by the merge step, which the processor alone never produces in this mode."""
    monkeypatch.delenv("DRIFTLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("DRIFTLINE_DRIFT_SLIDING_S", "0")  # tumbling windows only
    settings = kafka_settings.model_copy(update={"topic_prefix": unique("partitioned") + "."})
    stack = DriftStack(
        stack=StackSettings(data_dir=tmp_path, embedded_redis_port=0),
        kafka=settings,
        redis=RedisSettings(),
        drift=DriftProcessorSettings(partitioned=True, metrics_port=0),
        drift_merge=DriftMergeSettings(metrics_port=0),
    )
    with stack:
        by_name = {ep.name: ep for ep in stack.endpoints}
        assert {"drift-processor", "drift-merge"} <= set(by_name), list(by_name)
        assert stack.champion_version == "1"  # what `event` writes
        merge_metrics = by_name["drift-merge"].address
        assert merge_metrics != by_name["drift-processor"].address
        assert "DRIFTLINE_DRIFT_MERGE_METRICS_PORT" in stack.operator_env()

        # One window of 300 events over every partition, then an event on each partition
        # a window later: every partition's watermark passes the first window's end.
        x, names = breast_cancer()
        values = window_events(MODEL, 0, 300, np.random.default_rng(6), 0.0)
        records = [(f"request-{i}", v) for i, v in enumerate(values)]
        events_topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix).name
        produce(settings, events_topic, records)
        closing = [event(MODEL, T0 + 120_000, x[p], names, 900_000 + p) for p in range(6)]
        producer = Producer(producer_config(settings))
        for partition, value in enumerate(closing):
            producer.produce(events_topic, value=value, key=b"closing", partition=partition)
        assert producer.flush(30) == 0

        scores_topic = DRIFT_SCORES.prefixed(settings.topic_prefix).name
        scores = read_scores(
            settings, scores_topic, 1, timeout_s=90.0,
            done=lambda got: any(s["window_start"] == T0 for s in got),
        )  # fmt: skip
        [first] = [s for s in scores if s["window_start"] == T0]
        assert (first["model_name"], first["model_version"]) == (MODEL, "1")
        assert first["event_count"] == 300
        partitions = {r["partition"] for r in first["lineage"]}
        assert len(partitions) > 1, "merged from the shares of several partitions"
        merged = _samples(merge_metrics, "driftline_drift_merge_shares_total")
        assert merged.get("merged", 0) >= len(partitions), merged
        # What the Drift dashboard and DriftMergeStalled read, sampled by the merge step
        # itself (every driftline process declares the families; only it sets them).
        for gauge in ("waiting_partitions", "pending_windows", "watermark_lag_seconds"):
            assert _samples(merge_metrics, f"driftline_drift_merge_{gauge}"), gauge
        drift_samples = _samples(
            by_name["drift-processor"].address, "driftline_drift_merge_shares_total"
        )
        assert not drift_samples, "the processor sends partials; the merge step merges"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
