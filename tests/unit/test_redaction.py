"""Passwords in URLs never survive into text Driftline shows (schemas.redaction)."""

from __future__ import annotations

from schemas.redaction import redact_credentials, redact_url


def test_redact_url_masks_only_the_password() -> None:
    assert redact_url("https://ml:pa55@mlflow.internal:5000/api") == (
        "https://ml:***@mlflow.internal:5000/api"
    )
    assert redact_url("http://127.0.0.1:9093") == "http://127.0.0.1:9093"
    assert redact_url("sqlite:////var/lib/mlflow.db") == "sqlite:////var/lib/mlflow.db"


def test_redact_credentials_masks_every_url_in_free_text() -> None:
    # The shape of an MLflow REST error: the request URL quoted inside the message.
    message = (
        "API request to https://ml:s3cr:et@mlflow.internal/api/2.0/mlflow/runs/create "
        "failed with exception HTTPSConnectionPool(host='mlflow.internal'); "
        "fallback postgresql://app:hunter2@db:5432/mlflow unreachable"
    )
    shown = redact_credentials(message)
    assert "s3cr" not in shown and "et@" not in shown and "hunter2" not in shown
    assert "https://ml:***@mlflow.internal/api/2.0/mlflow/runs/create" in shown
    assert "postgresql://app:***@db:5432/mlflow" in shown


def test_redact_credentials_leaves_text_without_credentials_alone() -> None:
    text = "no run 'abc' at http://127.0.0.1:5000 (time 12:30, user@example.org)"
    assert redact_credentials(text) == text
