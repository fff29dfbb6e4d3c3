"""Settings come from DRIFTLINE_* variables, typed, with secrets masked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline.settings import StackSettings
from schemas.settings import KafkaSettings, RedisSettings


def test_defaults_run_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    kafka = KafkaSettings()
    assert kafka.bootstrap_servers == "127.0.0.1:9092"
    assert "bootstrap_servers" not in kafka.model_fields_set
    assert RedisSettings().url.get_secret_value() == "redis://127.0.0.1:6379/0"


def test_environment_overrides_and_marks_field_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("DRIFTLINE_KAFKA_CONSUMER_OVERRIDES", '{"fetch.min.bytes": 1024}')
    monkeypatch.setenv("DRIFTLINE_EMBEDDED_BROKER_PORT", "19092")
    kafka = KafkaSettings()
    assert kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    # The launcher treats an explicitly set address as "external: start no broker".
    assert "bootstrap_servers" in kafka.model_fields_set
    assert kafka.consumer_overrides == {"fetch.min.bytes": 1024}
    assert StackSettings().embedded_broker_port == 19092


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS", "soon")
    with pytest.raises(ValidationError) as info:
        KafkaSettings()
    assert "session_timeout_ms" in str(info.value)


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("DRIFTLINE_REDIS_URL", "redis://:hunter2-redis@cache:6379/0")
    kafka, redis_settings = KafkaSettings(), RedisSettings()
    shown = " ".join(
        [repr(kafka), str(kafka), str(kafka.masked()), repr(redis_settings),
         str(redis_settings.model_dump(mode="json"))]
    )  # fmt: skip
    assert "hunter2" not in shown
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == "hunter2-kafka"


def test_settings_are_frozen() -> None:
    kafka = KafkaSettings()
    with pytest.raises(ValidationError):
        kafka.bootstrap_servers = "elsewhere:9092"  # type: ignore[misc]


def test_drift_reference_path_reads_both_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFT_REFERENCE_PATH overrides the reference wherever it is read (issue 5/6)."""
    from stream.settings import DriftStatsSettings

    monkeypatch.delenv("DRIFTLINE_DRIFT_REFERENCE_PATH", raising=False)
    monkeypatch.setenv("DRIFT_REFERENCE_PATH", "/refs/shared.csv")
    assert str(DriftStatsSettings().reference_path) == "/refs/shared.csv"
    monkeypatch.setenv("DRIFTLINE_DRIFT_REFERENCE_PATH", "/refs/profile.json")
    assert str(DriftStatsSettings().reference_path) == "/refs/profile.json"


def test_drift_window_sizes_per_model_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.runtime.window_plan import WindowSizes
    from stream.settings import DriftProcessorSettings

    monkeypatch.setenv(
        "DRIFTLINE_DRIFT_WINDOWS",
        '{"fraud": {"tumbling": 30, "sliding": 600}, "b": {"sliding": 0}}',
    )
    plan = DriftProcessorSettings().window_plan()
    assert plan.sizes("anyone") == WindowSizes(60_000, 900_000, 60_000)
    assert plan.sizes("fraud") == WindowSizes(30_000, 600_000, 60_000)
    assert plan.sizes("b") == WindowSizes(60_000, 0, 60_000)


@pytest.mark.parametrize(
    ("windows", "where"),
    [
        ('{"fraud": {"tumbling": 60, "sliding": 100}}', "DRIFTLINE_DRIFT_WINDOWS['fraud']"),
        ('{"fraud": {"tumbling": 60, "slide": 1200}}', "must not exceed the sliding window"),
        ('{"fraud": {"tumblng": 60}}', "fraud.tumblng"),
        ('{"fraud": {"tumbling": -5}}', "fraud.tumbling"),
        ('["fraud"]', "windows"),
    ],
)
def test_bad_drift_window_sizes_name_the_model_and_rule(
    monkeypatch: pytest.MonkeyPatch, windows: str, where: str
) -> None:
    from stream.settings import DriftProcessorSettings

    monkeypatch.setenv("DRIFTLINE_DRIFT_WINDOWS", windows)
    with pytest.raises(ValidationError) as info:
        DriftProcessorSettings()
    assert where in str(info.value)


def test_global_sliding_size_must_be_whole_tumbling_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream.settings import DriftProcessorSettings

    monkeypatch.setenv("DRIFTLINE_DRIFT_SLIDING_S", "90")
    with pytest.raises(ValidationError, match=r"SLIDING_S.*whole number of tumbling windows"):
        DriftProcessorSettings()
