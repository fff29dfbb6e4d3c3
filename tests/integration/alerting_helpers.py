"""A real Alertmanager (Debian's binary) that a test can stop and start again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from driftline.embedded import alertmanager_process
from driftline.ports import LOOPBACK, free_port
from driftline.processes import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
ALERTMANAGER_CONFIG = REPO / "infra" / "alertmanager" / "alertmanager.yml"


class AlertmanagerServer:
    """Alertmanager on a fixed free loopback port, gossip off, the project's config."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._proc = alertmanager_process(
            self.binary, self.port, ALERTMANAGER_CONFIG, self.workdir / "data", self.workdir
        )
        self._proc.start()
        self._proc.wait_healthy(30)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` filtered by exact label values."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5.0)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return [a for a in found if all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait_for(
        self, present: bool, timeout_s: float = 60.0, **labels: str
    ) -> list[dict[str, Any]]:
        """Poll until an alert with ``labels`` is (or is no longer) listed; the bound only
        stops a broken run, the caller's assertion decides."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.alerts(**labels)
            if bool(got) == present or time.monotonic() > deadline:
                return got
            time.sleep(0.2)
