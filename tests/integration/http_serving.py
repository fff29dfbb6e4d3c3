"""Serving as a real HTTP server (uvicorn in a thread, on a free loopback port), for the
tests of clients that speak HTTP: ``driftline replay`` and ``driftline validate``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from driftline.ports import LOOPBACK, free_port


@contextmanager
def http_server(app: FastAPI, startup_s: float = 60.0) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block ends; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "serving did not start"
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
