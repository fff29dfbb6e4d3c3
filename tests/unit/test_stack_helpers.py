"""Pure helpers of the launcher: URL redaction, signal handling, Prometheus targets, the
status table's order, port choice for children launched side by side, and the services a
setting adds (partitioned drift: the merge step)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from driftline.ports import free_port
from driftline.processes import ManagedProcess
from driftline.settings import StackSettings
from driftline.stack import (
    Endpoint,
    LocalStack,
    StopRequested,
    _declared_position,
    _redact_url,
    scrape_targets,
)
from schemas.settings import RedisSettings
from stream.settings import DriftMergeSettings, DriftProcessorSettings


def test_redis_password_is_redacted_for_display() -> None:
    shown = _redact_url(RedisSettings(url=SecretStr("redis://app:pw-123@cache:6380/2")))
    assert shown == "redis://app:***@cache:6380/2"
    plain = _redact_url(RedisSettings(url=SecretStr("redis://cache:6379/0")))
    assert plain == "redis://cache:6379/0"


def test_prometheus_scrapes_http_endpoints_and_the_consumers_metrics_ports() -> None:
    endpoints = [
        Endpoint("kafka", "127.0.0.1:9092", "embedded"),
        Endpoint("serving", "http://127.0.0.1:8000", "embedded"),
        Endpoint(
            "retrain-worker",
            "consumer group driftline-retrain",
            "embedded",
            metrics="127.0.0.1:19107",
        ),
    ]
    assert scrape_targets(endpoints) == {
        "serving": "127.0.0.1:8000", "retrain-worker": "127.0.0.1:19107",
    }  # fmt: skip


def test_children_launched_together_never_get_the_same_port() -> None:
    """Children of one phase choose ports before any has bound one: a preferred port that
    is still free must not be handed out twice."""
    stack = LocalStack()
    preferred = free_port()
    try:
        first, second = stack._port(preferred), stack._port(preferred)
    finally:
        stack.stop()  # gives the reservations back
    assert first == preferred
    assert second != first


def test_status_table_lists_the_declared_order_not_the_finish_order() -> None:
    finished = ["prometheus", "canary-controller", "serving", "alertmanager", "redis", "kafka"]
    endpoints = sorted((Endpoint(n, "", "embedded") for n in finished), key=_declared_position)
    assert [ep.name for ep in endpoints] == [
        "kafka", "redis", "serving", "alertmanager", "canary-controller", "prometheus",
    ]  # fmt: skip


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_handlers")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_becomes_a_stop_request(sig: signal.Signals) -> None:
    stopper = StopRequested()
    stopper.install()
    os.kill(os.getpid(), sig)
    assert stopper.wait(poll_s=0.01) == sig.name


@pytest.mark.parametrize("partitioned", [False, True])
def test_partitioned_drift_also_starts_the_merge_step(
    partitioned: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DRIFTLINE_DRIFT_PARTITIONED=true``: the drift processor is told so and
    ``driftline drift merge`` starts next to it, on the same profiles, its metrics on a
    port of its own (exported to the operator as DRIFTLINE_DRIFT_MERGE_METRICS_PORT);
    otherwise the drift processor alone, in keyed mode. Nothing is started here: the
    launcher's launch step is recorded instead."""
    stack = LocalStack(
        stack=StackSettings(data_dir=tmp_path),
        drift=DriftProcessorSettings(partitioned=partitioned, metrics_port=0),
        drift_merge=DriftMergeSettings(metrics_port=0),
    )
    launched: dict[str, tuple[ManagedProcess, Endpoint]] = {}

    def record(proc: ManagedProcess, endpoint: Endpoint, timeout_s: float | None = None) -> None:
        launched[proc.name] = (proc, endpoint)

    monkeypatch.setattr(stack, "_launch", record)
    stack._start_drift_processor()

    assert list(launched) == (
        ["drift-processor", "drift-merge"] if partitioned else ["drift-processor"]
    )
    drift, drift_endpoint = launched["drift-processor"]
    assert drift.argv[-2:] == ["drift", "run"]
    assert drift.env["DRIFTLINE_DRIFT_PARTITIONED"] == str(partitioned).lower()
    if not partitioned:
        assert "DRIFTLINE_DRIFT_PARTITIONED" not in stack.operator_env()
        return
    merge, merge_endpoint = launched["drift-merge"]
    assert merge.argv[-2:] == ["drift", "merge"]
    reference = "DRIFTLINE_DRIFT_REFERENCE_PATH"
    assert merge.env[reference] == drift.env[reference]
    assert merge.env["DRIFTLINE_DRIFT_MERGE_STATE_DIR"] != drift.env["DRIFTLINE_DRIFT_STATE_DIR"]
    port = merge.env["DRIFTLINE_DRIFT_MERGE_METRICS_PORT"]
    assert port != drift.env["DRIFTLINE_DRIFT_METRICS_PORT"]
    assert merge_endpoint.address == f"http://127.0.0.1:{port}/metrics"
    assert merge.log_path == tmp_path / "logs" / "drift-merge.log"
    stack.endpoints += [merge_endpoint, drift_endpoint]
    operator = stack.operator_env()  # `driftline health` then probes the merge step
    assert operator["DRIFTLINE_DRIFT_MERGE_METRICS_PORT"] == port
    assert operator["DRIFTLINE_DRIFT_PARTITIONED"] == "true"
    assert scrape_targets(stack.endpoints)["drift-merge"] == f"127.0.0.1:{port}"
    ordered = sorted(stack.endpoints, key=_declared_position)
    assert [ep.name for ep in ordered] == ["drift-processor", "drift-merge"]
