"""Typed settings shared by every component: Kafka, Redis, the data dir and MLflow.

One configuration story: each setting is an environment variable with the
``DRIFTLINE_`` prefix, read by a pydantic-settings class, with a default that runs the
embedded stack. Component-specific settings live in each component, built the same way.
Secrets are ``SecretStr`` so they print as ``**********`` in logs and ``repr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Librdkafka property values may be strings, numbers or booleans.
ClientProperties = dict[str, str | int | float | bool]


class KafkaSettings(BaseSettings):
    """Where the Kafka cluster is and how Driftline's clients talk to it.

    ``bootstrap_servers`` empty means "use the embedded broker the launcher started";
    the launcher exports the real address to every child process it starts.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_KAFKA_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list of the Kafka cluster.",
    )
    topic_prefix: str = Field(
        default="",
        description="Prepended to every Driftline topic name (namespacing, tests).",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="librdkafka security.protocol."
    )
    sasl_mechanism: str | None = Field(default=None, description="e.g. PLAIN, SCRAM-SHA-512.")
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password; never printed or logged."
    )
    session_timeout_ms: int = Field(
        default=6000,
        ge=1000,
        description="Consumer-group session timeout. librdkafka's 45 s default makes the "
        "first group join take ~20 s on the embedded broker; 6 s brings it to ~3 s.",
    )
    heartbeat_interval_ms: int = Field(
        default=500, ge=100, description="Consumer heartbeat; about a tenth of the session."
    )
    client_overrides: ClientProperties = Field(
        default_factory=dict,
        description="Extra librdkafka properties for every client, as JSON.",
    )
    producer_overrides: ClientProperties = Field(
        default_factory=dict, description="Extra librdkafka properties for producers, as JSON."
    )
    consumer_overrides: ClientProperties = Field(
        default_factory=dict, description="Extra librdkafka properties for consumers, as JSON."
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replication factor for topics Driftline creates."
    )

    def masked(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, safe to print or log."""
        return self.model_dump(mode="json")


class RedisSettings(BaseSettings):
    """Where Redis is. Empty URL means "the embedded redis-server the launcher started"."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_REDIS_", frozen=True, extra="ignore")

    url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="redis:// URL; secret because it may carry a password.",
    )


class SchemaRegistrySettings(BaseSettings):
    """Where a Confluent-compatible Schema Registry is, if Driftline should use one.

    With ``url`` unset (the default), records use Avro single-object encoding and the
    schemas shipped in the package: nothing else to run. With ``url`` set
    (``DRIFTLINE_SCHEMA_REGISTRY_URL``), records use the Confluent wire format with
    registered ids, which other Kafka tooling (ksqlDB, Connect, kcat -s) understands.
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_SCHEMA_REGISTRY_", frozen=True, extra="ignore"
    )

    url: str | None = Field(
        default=None, description="Base URL of the registry, e.g. http://localhost:8081."
    )
    basic_auth_user_info: SecretStr | None = Field(
        default=None, description="'user:password' for HTTP basic authentication."
    )
    auto_register: bool = Field(
        default=True,
        description="Register Driftline's schemas on first use; off where a CI pipeline "
        "registers them and producers only look ids up.",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of registry calls.")


class DataSettings(BaseSettings):
    """Where local state lives (``DRIFTLINE_DATA_DIR``, shared with the launcher)."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Root for logs, MLflow store, spool and reports."
    )


class MlflowSettings(BaseSettings):
    """MLflow location. Unset means the embedded sqlite store under the data dir."""

    model_config = SettingsConfigDict(env_prefix="MLFLOW_", frozen=True, extra="ignore")

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking (and registry) URI; unset = sqlite under DRIFTLINE_DATA_DIR.",
    )


class FeatureViewSettings(BaseSettings):
    """Where the feature views are declared; read by the features processor and serving."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_FEATURES_", frozen=True, extra="ignore")

    views_path: Path | None = Field(
        default=None,
        description="TOML file of feature views (docs/features.md); empty: the packaged "
        "schemas/feature_views.toml.",
    )
