"""Typed settings of the serving component, read once from the environment.

Every class is frozen and reads its own prefix: ``DRIFTLINE_SERVING_*`` for the HTTP
service, ``DRIFTLINE_ADMIN_TOKENS`` for the admin API, and ``DRIFT_REFERENCE_PATH`` /
``DRIFT_CURRENT_PATH`` (the drift fixtures). Where local state lives
(``DRIFTLINE_DATA_DIR``) and MLflow (``MLFLOW_TRACKING_URI``) are shared with retrain and
live in :mod:`schemas.settings`. Defaults run the embedded stack.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.breast_cancer import DEFAULT_MODEL_NAME as DEFAULT_MODEL_NAME


class DriftFixtureSettings(BaseSettings):
    """Where `make train` writes (and readers find) the drift fixture CSVs."""

    model_config = SettingsConfigDict(env_prefix="DRIFT_", frozen=True, extra="ignore")

    reference_path: Path = Field(
        default=Path("data/sample/drift_reference.csv"),
        description="Reference rows (the training split) for drift comparisons.",
    )
    current_path: Path = Field(
        default=Path("data/sample/drift_current.csv"),
        description="Held-out rows with a documented shift, to compare against the reference.",
    )


class AdminSettings(BaseSettings):
    """Bearer tokens of the ``/admin`` API; secret, never logged."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_ADMIN_", frozen=True, extra="ignore")

    tokens: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated bearer tokens accepted under /admin; empty = none accepted.",
    )

    def token_list(self) -> list[bytes]:
        """The configured tokens, stripped, empty entries dropped."""
        raw = self.tokens.get_secret_value()
        return [t.strip().encode() for t in raw.split(",") if t.strip()]


class CanarySettings(BaseSettings):
    """The initial canary share (``CANARY_SPLIT``), used while Redis holds no rollout state."""

    model_config = SettingsConfigDict(env_prefix="", frozen=True, extra="ignore")

    canary_split: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Initial canary share when a 'canary' alias exists and Redis has no state.",
    )


class ServingSettings(BaseSettings):
    """The prediction service: where it listens, what it serves, how it publishes."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_SERVING_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP port.")
    model_name: str = Field(
        default=DEFAULT_MODEL_NAME, description="Registered MLflow model that is served."
    )
    model_alias: str = Field(default="champion", description="Registry alias loaded at start.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest accepted request body (413 above)."
    )
    max_batch_rows: int = Field(
        default=1000, ge=1, description="Most rows one batch /predict call may carry."
    )
    publish_events: bool = Field(
        default=True, description="Publish an InferenceEvent per request (off: benchmarks only)."
    )
    buffer_max_events: int = Field(
        default=10_000,
        ge=1,
        description="Events held in memory while the broker is away; beyond it they spool.",
    )
    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Bound of the on-disk spool; events beyond it are dropped and counted.",
    )
    delivery_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="librdkafka message.timeout.ms, in seconds: an event not acknowledged "
        "by then is spooled and retried.",
    )
    publish_linger_ms: int = Field(
        default=50,
        ge=0,
        description="librdkafka linger.ms of serving's producer: larger batches cost less CPU "
        "per event (measured in bench_serving); events are asynchronous anyway.",
    )
    rollout_poll_s: float = Field(
        default=0.5, gt=0, description="How often rollout state is re-read from Redis."
    )
    shadow_queue_max: int = Field(
        default=1000,
        ge=1,
        description="Requests waiting for the shadow model; beyond it their rows are dropped "
        "and counted, never slowing /predict.",
    )
    dataset_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest dataset accepted by POST /references or 'driftline reference add' "
        "(413 above).",
    )
    dataset_max_rows: int = Field(
        default=100_000, ge=1, description="Most rows a registered dataset may have."
    )
    features_max_rows: int = Field(
        default=1000, ge=1, description="Most entity rows one POST /features/online may ask for."
    )
    features_max_refs: int = Field(
        default=200, ge=1, description="Most feature refs one POST /features/online may ask for."
    )
    pipeline_workers: int = Field(
        default=2, ge=1, description="Pipeline jobs (POST /pipelines/trigger) running at once."
    )
    pipeline_max_pending: int = Field(
        default=16,
        ge=1,
        description="Pipeline jobs queued or running at once; beyond it a trigger gets 429.",
    )
    shutdown_flush_s: float = Field(
        default=10.0, ge=0, description="Seconds shutdown waits for pending events."
    )
