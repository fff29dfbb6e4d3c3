"""``POST /features/online`` refusals, without Redis or a model: each mistake is a precise
4xx naming where it is, and serving without Redis answers 503 rather than inventing nulls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.settings import DataSettings
from serving.app import create_app
from serving.settings import ServingSettings
from serving.state import ServingConfig

REF = "patient_stats:avg_mean_radius_7d"  # the packaged view (join key entity_id)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    config = ServingConfig(
        serving=ServingSettings(publish_events=False, features_max_rows=3, features_max_refs=2),
        data=DataSettings(data_dir=Path(tmp_path_factory.mktemp("features"))),
        redis=None,
    )
    return TestClient(create_app(config))  # no lifespan: no model, no broker


@pytest.mark.parametrize(
    ("body", "status", "error", "location"),
    [
        ({"entity_rows": [{"entity_id": "a"}], "feature_refs": ["nope:x"]}, 400,
         "unknown_feature_ref", "feature_refs"),
        ({"entity_rows": [{"user": "a"}], "feature_refs": [REF]}, 400,
         "missing_entity_key", "entity_rows[0]"),
        ({"entity_rows": [{"entity_id": 1.5}], "feature_refs": [REF]}, 400,
         "invalid_entity_key", "entity_rows[0].entity_id"),
        ({"entity_rows": [{"entity_id": "x" * 201}], "feature_refs": [REF]}, 400,
         "invalid_entity_key", "entity_rows[0].entity_id"),
        ({"entity_rows": [{"entity_id": str(i)} for i in range(4)], "feature_refs": [REF]},
         413, "too_many_rows", "entity_rows"),
        ({"entity_rows": [{"entity_id": "a"}], "feature_refs": [REF, REF, REF]}, 413,
         "too_many_refs", "feature_refs"),
        ({"entity_rows": [], "feature_refs": [REF]}, 422, "invalid_request", "body.entity_rows"),
        ({"entity_rows": [{"entity_id": "a"}], "feature_refs": [REF], "x": 1}, 422,
         "invalid_request", "body.x"),
        ({"entity_rows": [{"entity_id": "a"}], "feature_refs": [REF]}, 503,
         "feature_store_unavailable", None),
    ],
)  # fmt: skip
def test_mistakes_get_precise_answers(
    client: TestClient, body: dict[str, Any], status: int, error: str, location: str | None
) -> None:
    answer = client.post("/features/online", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.json().get("location") == location


def test_an_unknown_ref_lists_every_known_one(client: TestClient) -> None:
    answer = client.post(
        "/features/online", json={"entity_rows": [{"entity_id": "a"}], "feature_refs": ["v:f"]}
    )
    message = answer.json()["message"]
    for ref in ("patient_stats:prediction_count_7d", REF, "patient_stats:last_mean_radius"):
        assert ref in message
