"""Named datasets: registered through the API and the CLI, then used by /drift/detect."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftline.cli import app as cli
from retrain.drift_fixtures import drift_fixtures
from serving.app import create_app
from serving.state import ServingConfig
from tests.integration.conftest import ADMIN_HEADERS


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    return records


def test_register_by_api_and_cli_then_detect_against_them(
    serving_config: Callable[..., ServingConfig], tmp_path: Path
) -> None:
    reference, current = drift_fixtures()
    shifted = _rows(current)
    few = ["mean radius", "mean texture", "mean smoothness"]
    cli_file = tmp_path / "few.json"
    cli_file.write_text(json.dumps({"rows": _rows(reference[few])}))
    config = serving_config(publish_events=False)

    added = CliRunner().invoke(
        cli, ["reference", "add", "cli-few", str(cli_file)],
        env={"DRIFTLINE_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "registered cli-few: 426 rows, 3 columns" in added.output
    again = CliRunner().invoke(
        cli, ["reference", "add", "cli-few", str(cli_file)],
        env={"DRIFTLINE_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert again.exit_code == 1 and "already registered" in again.output

    with TestClient(create_app(config)) as client:
        as_rows = {"id": "shifted-rows", "rows": shifted}
        assert client.post("/references", json=as_rows).status_code == 401
        wrong = client.post("/references", json=as_rows, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 403
        created = client.post("/references", json=as_rows, headers=ADMIN_HEADERS)
        assert created.status_code == 201, created.text
        assert created.json()["rows"] == len(shifted) and "target" in created.json()["columns"]
        csv_text = reference.head(200).to_csv(index=False)
        by_csv = client.post("/references", json={"id": "train.200", "csv": csv_text},
                             headers=ADMIN_HEADERS)  # fmt: skip
        assert by_csv.status_code == 201 and by_csv.json()["rows"] == 200
        bad = client.post(
            "/references", json={"id": "../x", "rows": shifted}, headers=ADMIN_HEADERS
        )
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_dataset_id"
        taken = client.post("/references", json={"id": "training", "csv": csv_text},
                            headers=ADMIN_HEADERS)  # fmt: skip
        assert taken.status_code == 409 and taken.json()["error"] == "reserved_dataset_id"
        listed = client.get("/references").json()["ids"]

        def detect(reference_id: str) -> dict[str, Any]:
            body = {"reference_data_id": reference_id, "current_data": shifted}
            answer = client.post("/drift/detect", json=body)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        same = detect("shifted-rows")
        against_csv = detect("train.200")
        against_cli = detect("cli-few")
        unknown = client.post(
            "/drift/detect", json={"reference_data_id": "nope", "current_data": shifted}
        )

    assert listed == ["reference", "training", "validation", "cli-few", "shifted-rows",
                      "train.200"]  # fmt: skip
    assert same["drift_score"] == 0.0 and same["is_drift"] is False
    assert against_csv["is_drift"] is True
    drifted = {f["feature"] for f in against_csv["features"] if f["is_drift"]}
    assert {"mean radius", "mean area", "worst perimeter"} <= drifted
    assert [f["feature"] for f in against_cli["features"]] == few
    assert len(against_cli["unknown_features"]) == 27
    assert unknown.status_code == 404
    assert "cli-few" in unknown.json()["message"] and "shifted-rows" in unknown.json()["message"]
