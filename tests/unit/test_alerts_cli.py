"""``driftline alerts rules``: lists a valid file, names the fault of an invalid one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from driftline.cli import app
from schemas.redaction import redact_url

runner = CliRunner()


def test_rules_lists_the_shipped_rules() -> None:
    result = runner.invoke(app, ["alerts", "rules"])
    assert result.exit_code == 0, result.output
    assert "HighDriftScore" in result.output
    assert "drift_score > 0.8 for 15m, clears at 0.6" in result.output


def test_rules_refuses_an_invalid_file_with_the_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[[rules]]\nname = "X"\nseverity = "urgent"\nsource = "slo"\nmetric = "error_rate"\n'
        'threshold = 0.1\nsummary = "s"\ndescription = "d"\n'
    )
    result = runner.invoke(app, ["alerts", "rules", "--rules", str(bad)])
    assert result.exit_code == 1
    assert "rule 'X' (#1) severity" in result.output


def test_alertmanager_password_never_shown() -> None:
    assert (
        redact_url("http://ops:s3cret@am:9093/api/v2/alerts")
        == "http://ops:***@am:9093/api/v2/alerts"
    )
    assert redact_url("http://127.0.0.1:9093") == "http://127.0.0.1:9093"
