"""Settings of the alert evaluator (``DRIFTLINE_ALERTING_*``) and of Alertmanager
delivery (``DRIFTLINE_ALERTMANAGER_*``). ``docs/alerting.md`` explains each."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertingSettings(BaseSettings):
    """How ``driftline alerts run`` evaluates the rules."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_ALERTING_", frozen=True, extra="ignore")

    rules_path: Path | None = Field(
        default=None,
        description="Alert rules TOML file; unset: the defaults shipped in "
        "stream/alerting/rules.toml.",
    )
    group_id: str = Field(
        default="driftline-alerting", min_length=1, description="Kafka consumer group."
    )
    batch_size: int = Field(default=500, ge=1, description="Records per consume() call.")
    poll_timeout_s: float = Field(
        default=0.5, gt=0, description="Longest wait of one consume() call, seconds."
    )
    replay_s: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="On start, re-read this much of drift.scores and slo.windows before the "
        "committed offsets (outputs suppressed) to rebuild pending and firing alerts.",
    )
    rejection_alert_ttl_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="A RetrainCandidateRejected alert (from a rejected DeploymentEvent) ends "
        "by itself this long after the rejection.",
    )
    metrics_port: int = Field(
        default=9105, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the /metrics server binds (loopback)."
    )


class AlertmanagerSettings(BaseSettings):
    """Where and how alerts are posted (``POST /api/v2/alerts``)."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_ALERTMANAGER_", frozen=True, extra="ignore"
    )

    url: str | None = Field(
        default=None,
        description="Alertmanager base URL, e.g. http://127.0.0.1:9093; unset: alerts go "
        "to the alerts topic only.",
    )
    timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one post.")
    resend_interval_s: float = Field(
        default=60.0, gt=0, description="Firing alerts are posted again this often."
    )
    max_pending: int = Field(
        default=10_000, ge=1, description="Most alert states queued while Alertmanager is away."
    )
    backoff_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between retries to an unreachable one."
    )
