"""Settings of the local-stack launcher (``driftline up``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """How the embedded stack runs. Read from ``DRIFTLINE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Root for logs, MLflow store and reports of the local stack.",
    )
    embedded_broker_port: int = Field(
        default=9092, ge=0, le=65535,
        description="Preferred port of the embedded broker; a free one if busy, 0 = any.",
    )  # fmt: skip
    embedded_redis_port: int = Field(
        default=6379, ge=0, le=65535,
        description="Preferred port of the embedded redis-server; a free one if busy.",
    )  # fmt: skip
    embedded_alertmanager_port: int = Field(
        default=9093, ge=0, le=65535,
        description="Preferred port of the local Alertmanager (if installed); a free one if busy.",
    )  # fmt: skip
    embedded_prometheus_port: int = Field(
        default=9090, ge=0, le=65535,
        description="Preferred port of the local Prometheus (if installed); a free one if busy.",
    )  # fmt: skip
    embedded_redis_persist: bool = Field(
        default=False, description="Give the embedded redis-server an append-only file."
    )
    startup_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds each embedded server gets to become healthy."
    )

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"
