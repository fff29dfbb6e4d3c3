"""Settings of the local-stack launcher (``driftline up``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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


class ValidateSettings(BaseSettings):
    """What ``driftline validate`` checks. Read from ``DRIFTLINE_VALIDATE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_VALIDATE_", frozen=True, extra="ignore")

    url: str | None = Field(
        default=None,
        description="Serving's base URL; unset = the local stack's (DRIFTLINE_SERVING_HOST/PORT).",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus to query; unset = the monitoring check is reported as skipped.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the training check (POST /models/train); unset = the "
        "first of DRIFTLINE_ADMIN_TOKENS.",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of each call.")


class OperatorSettings(BaseSettings):
    """What the operator commands (``driftline health``, ``backup``, ``restore``) need
    beyond the components' own settings. Read from ``DRIFTLINE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus base URL for `driftline health` (`make up` prints its own); "
        "unset: Prometheus is reported as not configured.",
    )
    health_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Bound of each `driftline health` probe, seconds."
    )


class DemoSettings(BaseSettings):
    """How ``make demo`` runs. Read from ``DRIFTLINE_DEMO_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_DEMO_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path("data/demo"),
        description="The demo's own data dir, emptied at each start (a fresh story each run).",
    )
    rate: float = Field(default=20.0, gt=0, description="Requests per second to /predict.")
    drift_after_s: float = Field(
        default=15.0, ge=0, description="Seconds of clean traffic before the drift starts."
    )
    ramp_s: float = Field(
        default=10.0, gt=0, description="Seconds over which the drift reaches its full size."
    )
    window_s: float = Field(default=5.0, gt=0, description="Drift and SLO window, seconds.")
    timeout_s: float = Field(
        default=150.0, gt=0, description="Most seconds of traffic before the demo gives up."
    )
