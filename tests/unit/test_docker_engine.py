"""Docker detection pings the engine: a client with no engine behind it means 'absent'."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker_engine import docker_engine_available


def test_absent_engine_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    available, why = docker_engine_available(timeout_s=1)
    assert available is False
    assert "engine" in why.lower()
