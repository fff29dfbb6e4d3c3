"""One breach, both evaluators: InferenceEvents with many server errors go through the
real SLO processor; the in-stream evaluator pages from its SloWindows, and a real
Prometheus, scraping the SLO processor's metrics with the project's rules, pages too.
Alertmanager shows both, the Prometheus one muted by the stream one (inhibit rule).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, start_http_server

from driftline.embedded import prometheus_process
from driftline.monitoring import prometheus_config, write_prometheus_config
from driftline.ports import LOOPBACK, free_port
from schemas.codec import SingleObjectCodec
from schemas.settings import KafkaSettings
from schemas.topics import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_SCORES,
    INFERENCE_EVENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from stream.alerting.app import build_alert_loop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from stream.settings import SloSettings
from stream.slo_app import build_slo_loop
from tests.integration.alerting_helpers import AlertmanagerServer
from tests.integration.test_drift_processor_support import produce
from tests.records_factory import inference_event

CODEC = SingleObjectCodec()
MIN = 60_000


@contextmanager
def running(*loops: Any) -> Iterator[None]:
    """Run loops in threads; stop and join them one at a time."""
    threads = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for loop, thread in zip(loops, threads, strict=True):
            loop.stop()
            thread.join(30)


def failing_traffic(model: str, windows: int, per_window: int, t0: int) -> list[tuple[str, bytes]]:
    """Half the requests of every window are server errors; then one event that closes
    the last window."""
    records = []
    for w in range(windows):
        for i in range(per_window):
            value = inference_event(
                w * per_window + i, model, event_time=t0 + w * MIN + i * (MIN // per_window),
                variant="baseline", latency_ms=20.0,
                outcome="server_error" if i % 2 else "ok",
            )  # fmt: skip
            records.append((model, CODEC.encode("InferenceEvent", value)))
    closer = inference_event(10**6, model, event_time=t0 + (windows + 1) * MIN)
    records.append((model, CODEC.encode("InferenceEvent", closer)))
    return records


def test_one_breach_pages_from_the_stream_and_from_prometheus(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]],
    alertmanager: AlertmanagerServer, unique: Callable[[str], str], tmp_path: Path,
) -> None:  # fmt: skip
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    make_topics(INFERENCE_EVENTS, SLO_WINDOWS, DRIFT_SCORES, ALERTS, RETRAIN_REQUESTS, DEAD_LETTERS)
    model = unique("e2e")
    slo = build_slo_loop(
        kafka_settings,
        SloSettings(
            group_id=unique("slo"), state_dir=tmp_path / "slo-state", poll_timeout_s=0.2,
            metrics_port=0, commit_interval_s=0, allowed_lateness_s=0,
        ),
    )  # fmt: skip
    evaluator = build_alert_loop(
        kafka_settings,
        AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2),
        AlertmanagerSettings(url=alertmanager.url, resend_interval_s=2.0),
    )
    # the SLO processor's gauges live in this process's default registry: serve them
    metrics_port = free_port()
    server, _ = start_http_server(metrics_port, addr=LOOPBACK, registry=REGISTRY)
    config = prometheus_config(
        {"slo-processor": f"{LOOPBACK}:{metrics_port}"},
        f"{LOOPBACK}:{alertmanager.port}",
        interval_s=1.0,
    )
    path = write_prometheus_config(tmp_path / "prometheus.yml", config)
    prometheus = prometheus_process(Path(binary), free_port(), path, tmp_path / "tsdb", tmp_path)
    prometheus.start()
    try:
        prometheus.wait_healthy(60)
        with running(slo, evaluator):
            t0 = (round(time.time() * 1000) // MIN - 20) * MIN
            produce(
                kafka_settings,
                f"{kafka_settings.topic_prefix}{INFERENCE_EVENTS.name}",
                failing_traffic(model, windows=3, per_window=100, t0=t0),
            )
            [stream] = alertmanager.wait_for(
                True, timeout_s=90, alertname="SloBurnRatePage", model=model, evaluator="stream"
            )
            [prom] = alertmanager.wait_for(
                True, timeout_s=90, alertname="SloBurnRatePage", model=model,
                evaluator="prometheus",
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while prom["status"]["state"] != "suppressed" and time.monotonic() < deadline:
                time.sleep(0.2)
                [prom] = alertmanager.alerts(
                    alertname="SloBurnRatePage", model=model, evaluator="prometheus"
                )
    finally:
        prometheus.stop()
        server.shutdown()
    for alert in (stream, prom):
        assert (alert["labels"]["variant"], alert["labels"]["slo"]) == ("baseline", "availability")
        assert alert["labels"]["severity"] == "critical"
    assert stream["status"]["state"] == "active"
    assert prom["status"]["state"] == "suppressed"  # muted by its stream twin
    assert stream["fingerprint"] in prom["status"]["inhibitedBy"]
