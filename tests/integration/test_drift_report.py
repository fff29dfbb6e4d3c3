"""``driftline report`` on the committed drift fixture: a self-contained HTML page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftline.cli import app
from retrain.drift_fixtures import SIZE_FEATURES
from schemas.breast_cancer import feature_names

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def test_report_names_every_feature_and_marks_the_shifted_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DRIFTLINE_DRIFT_REFERENCE_PATH", raising=False)
    monkeypatch.setenv("DRIFT_REFERENCE_PATH", str(SAMPLE / "drift_reference.csv"))
    monkeypatch.setenv("DRIFT_CURRENT_PATH", str(SAMPLE / "drift_current.csv"))
    answer = CliRunner().invoke(app, ["report"])
    assert answer.exit_code == 0, answer.output
    (written,) = (tmp_path / "reports").glob("*.html")
    assert answer.output.strip() == str(written)
    page = written.read_text()

    flags = {name.strip(): css for css, name in re.findall(
        r'<section class="feature (\w+)"><h3>([^<]+?) <span', page)}  # fmt: skip
    assert set(flags) == set(feature_names()) and len(flags) == 30
    drifted = {name for name, css in flags.items() if css == "drift"}
    assert drifted == {*SIZE_FEATURES, "mean texture"}
    assert page.count("<svg") == 30
    assert re.search(r"https?://", page) is None  # nothing fetched: no CDN, no links


def test_report_reports_an_unreadable_input(tmp_path: Path) -> None:
    answer = CliRunner().invoke(
        app,
        ["report", "--reference", str(SAMPLE / "drift_reference.csv"),
         "--current", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r.html")],
    )  # fmt: skip
    assert answer.exit_code == 1 and "cannot build the report" in answer.output
    assert not (tmp_path / "r.html").exists()
