"""``driftline validate`` against a real serving (uvicorn, real broker, real MLflow) and,
when installed, a real Prometheus."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.embedded import prometheus_process
from driftline.monitoring import prometheus_config, write_prometheus_config
from driftline.ports import LOOPBACK, free_port
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, RETRAIN_REQUESTS
from serving.app import create_app
from serving.state import ServingConfig
from tests.integration.conftest import SERVING_ADMIN_TOKEN
from tests.integration.http_serving import http_server

#: Issue 11's endpoints (pipelines, online features; they need Redis): they must pass.
ISSUE_11_CHECKS = ("data pipeline trigger", "online feature retrieval")


@pytest.fixture
def prometheus_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    port = free_port()
    config = write_prometheus_config(
        tmp_path / "prometheus.yml",
        prometheus_config({"prometheus": f"{LOOPBACK}:{port}"}, None, rule_files=[]),
    )
    proc = prometheus_process(Path(binary), port, config, tmp_path / "tsdb", tmp_path)
    proc.start()
    try:
        proc.wait_healthy(60)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        proc.stop()


def _lines(output: str) -> dict[str, tuple[str, str]]:
    """check name -> (PASS/FAIL/SKIP, detail), from validate's one line per check."""
    found = re.findall(r"^(PASS|FAIL|SKIP) +([a-z ]+): (.*)$", output, flags=re.M)
    return {name: (status, detail) for status, name, detail in found}


def test_validate_reports_one_line_per_check_against_real_serving(
    serving_config: Callable[..., ServingConfig],
    make_topics: Callable[..., list[str]],
    kafka_settings: KafkaSettings,
    prometheus_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_topics(INFERENCE_EVENTS, RETRAIN_REQUESTS)
    monkeypatch.setenv("DRIFTLINE_VALIDATE_ADMIN_TOKEN", SERVING_ADMIN_TOKEN)
    monkeypatch.delenv("DRIFTLINE_VALIDATE_PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("DRIFTLINE_PROMETHEUS_URL", raising=False)
    with http_server(create_app(serving_config(redis_url=redis_url))) as url:
        result = CliRunner().invoke(
            app, ["validate", "--url", url, "--prometheus-url", prometheus_url]
        )
        no_prometheus = CliRunner().invoke(app, ["validate", "--url", url])
        wrong_token = CliRunner().invoke(app, ["validate", "--url", url, "--token", "nope"])
    lines = _lines(result.output)
    assert list(lines) == [
        "data pipeline trigger", "online feature retrieval", "training", "inference",
        "drift detection", "monitoring", "security", "performance",
    ], result.output  # fmt: skip
    for name in ("training", "inference", "drift detection", "monitoring", "security",
                 "performance"):  # fmt: skip
        assert lines[name][0] == "PASS", (name, result.output)
    assert re.fullmatch(r"MLflow run [0-9a-f]{32}", lines["training"][1])
    assert re.fullmatch(r"drift_score \d\.\d{3} on 60 rows", lines["drift detection"][1])
    assert lines["security"][1] == "invalid token refused with 403"
    assert lines["performance"][1].startswith("10/10 health calls 200")
    for name in ISSUE_11_CHECKS:
        assert lines[name][0] == "PASS", (name, result.output)
    assert re.fullmatch(r"job [0-9a-f-]{36} accepted", lines["data pipeline trigger"][1])
    assert re.fullmatch(
        r"\S+:\S+ retrieved \(\d+ refs known\)", lines["online feature retrieval"][1]
    )
    assert result.exit_code == 0, result.output

    assert _lines(no_prometheus.output)["monitoring"] == (
        "SKIP",
        "no Prometheus configured (DRIFTLINE_VALIDATE_PROMETHEUS_URL)",
    )
    training = _lines(wrong_token.output)["training"]
    assert training[0] == "FAIL" and "answered 403" in training[1], wrong_token.output
    assert wrong_token.exit_code == 1


def test_validate_fails_every_check_when_nothing_answers() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    result = CliRunner().invoke(app, ["validate", "--url", url, "--token", "t"])
    lines = _lines(result.output)
    assert len(lines) == 8, result.output
    assert [s for s, _ in lines.values()] == ["FAIL"] * 5 + ["SKIP"] + ["FAIL"] * 2
    assert "ConnectError" in lines["inference"][1]
    assert result.exit_code == 1
