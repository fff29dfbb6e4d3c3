"""Is a Docker engine really there? Ask it, don't look for the ``docker`` command.

A ``docker`` client on PATH with no engine behind it is common (this project's own CI
machines): testcontainers then raises ``DockerException`` from its constructor. Pinging
the engine with a short timeout answers the real question without hanging.
"""

from __future__ import annotations


def docker_engine_available(timeout_s: float = 3.0) -> tuple[bool, str]:
    """(True, version) when an engine answers a ping, else (False, why not)."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return False, "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=timeout_s)
    except DockerException as exc:
        return False, f"no Docker engine: {exc}"
    try:
        client.ping()
        version = client.version().get("Version", "unknown")
        return True, f"Docker engine {version}"
    except Exception as exc:  # requests' and docker's errors alike mean "no engine"
        return False, f"Docker engine did not answer a ping: {exc}"
    finally:
        client.close()
