"""``driftline config`` shows every setting group with secrets masked; a bad value is one line."""

from __future__ import annotations

import json

import pytest

from driftline.cli import app
from driftline.config_view import effective_settings, mask

pytestmark = pytest.mark.unit


def test_mask_hides_credential_overrides_and_url_passwords() -> None:
    dumped = {
        "client_overrides": {"sasl.password": "p1", "ssl.key.password": "p2", "acks": "all"},
        "tracking_uri": "https://user:p3@mlflow.example:5000",
        "sasl_password": None,
    }
    assert mask(dumped) == {
        "client_overrides": {"sasl.password": "**********", "ssl.key.password": "**********",
                             "acks": "all"},
        "tracking_uri": "https://user:***@mlflow.example:5000",
        "sasl_password": None,
    }  # fmt: skip


def test_config_prints_every_group_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "DRIFTLINE_KAFKA_SASL_PASSWORD": "secret-sasl",
        "DRIFTLINE_KAFKA_PRODUCER_OVERRIDES": '{"sasl.password": "secret-override"}',
        "DRIFTLINE_REDIS_URL": "redis://:secret-redis@r:6379/0",
        "DRIFTLINE_ADMIN_TOKENS": "secret-admin",
        "DRIFTLINE_VALIDATE_ADMIN_TOKEN": "secret-validate",
        "DRIFTLINE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "u:secret-registry",
        "MLFLOW_TRACKING_URI": "http://u:secret-mlflow@mlflow:5000",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DRIFTLINE_RETRAIN_GATE_MIN_ACCURACY", "0.85")
    with pytest.raises(SystemExit) as exited:
        app(["config"], prog_name="driftline")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "secret-" not in out
    printed = json.loads(out)
    assert printed == json.loads(json.dumps(effective_settings()))
    assert printed["retrain"]["gate_min_accuracy"] == 0.85  # not only the stack's settings
    assert {"kafka", "redis", "stack", "serving", "drift_processor", "slo", "alerting",
            "canary_analysis", "validate"} <= set(printed)  # fmt: skip


def test_a_bad_setting_names_the_variable_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS", "secret-typo")
    with pytest.raises(SystemExit) as exited:
        app(["config"], prog_name="driftline")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "DRIFTLINE_KAFKA_SESSION_TIMEOUT_MS: Input should be a valid integer" in err
    assert "secret-typo" not in err and "Traceback" not in err


def test_a_variable_that_is_not_json_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTLINE_CANARY_STEPS", "[0.1, 0.5")
    with pytest.raises(SystemExit) as exited:
        app(["config"], prog_name="driftline")
    assert exited.value.code == 2
    assert 'invalid setting: error parsing value for field "steps"' in capsys.readouterr().err
