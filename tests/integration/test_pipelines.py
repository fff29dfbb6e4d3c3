"""``POST /pipelines/trigger`` and ``GET /pipelines/{job_id}`` on a real app: MLflow store,
embedded broker, real Redis. Each job type does its work; mistakes get precise 4xx."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from schemas.breast_cancer import load_split
from schemas.model_registry import ModelStore
from schemas.settings import FeatureViewSettings, KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.state import ServingConfig
from stream.stats import ReferenceProfile
from tests.integration.conftest import ADMIN_HEADERS
from tests.integration.serving_helpers import events_by_request

VIEWS = """
[[views]]
name = "patients"
entity = "patient_id"
window = "7d"
bucket = "1h"
models = ["breast-cancer-classifier"]

[[views.features]]
name = "visits"
aggregate = "count"
[[views.features]]
name = "avg_radius"
aggregate = "mean"
field = "mean radius"
"""


def _wait(client: TestClient, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll the job until it finished (the bound only stops a broken run)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/pipelines/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def _trigger(client: TestClient, pipeline_type: str, dataset: str) -> dict[str, Any]:
    answer = client.post(
        "/pipelines/trigger",
        json={"pipeline_type": pipeline_type, "dataset": dataset},
        headers=ADMIN_HEADERS,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success" and set(body) == {"status", "job_id"}
    return _wait(client, body["job_id"])


def _register(client: TestClient, dataset_id: str, frame: pd.DataFrame) -> None:
    rows = [
        {k: (None if pd.isna(v) else float(v)) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
    answer = client.post(
        "/references", json={"id": dataset_id, "rows": rows}, headers=ADMIN_HEADERS
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture
def app_config(
    serving_config: Callable[..., ServingConfig],
    serving_store: ModelStore,
    redis_url: str,
    tmp_path: Path,
) -> ServingConfig:
    views = tmp_path / "views.toml"
    views.write_text(VIEWS)
    return dataclasses.replace(
        serving_config(redis_url=redis_url),
        store=dataclasses.replace(serving_store, data_dir=tmp_path / "store"),
        features=FeatureViewSettings(views_path=views),
    )


def test_every_pipeline_type_does_its_work(
    app_config: ServingConfig,
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    redis_client: Any,
    tmp_path: Path,
) -> None:
    make_topics(INFERENCE_EVENTS)
    split = load_split()
    names = list(split.features)
    with TestClient(create_app(app_config)) as client:
        version = client.get("/models").json()
        # data_processing: validated, rows with a gap dropped, registered as a reference
        gappy = pd.DataFrame(split.x_validation[:40], columns=names)
        gappy.loc[3, "mean radius"] = np.nan
        gappy["extra column"] = 1.0
        _register(client, "clinic-a", gappy)
        job = _trigger(client, "data_processing", "clinic-a")
        assert job["status"] == "succeeded", job
        assert job["result"]["rows"] == 39 and job["result"]["dropped_rows"] == 1
        assert job["result"]["reference_id"] == "clinic-a-processed"
        assert job["progress"] == 1.0
        assert "clinic-a-processed" in client.get("/references").json()["ids"]
        detect = client.post(
            "/drift/detect",
            json={"reference_data_id": "clinic-a-processed",
                  "current_data": gappy.drop(columns="extra column").dropna().to_dict("records")},
        )  # fmt: skip
        assert detect.status_code == 200 and detect.json()["is_drift"] is False

        # ... a dataset without the model's features fails, naming them
        _register(client, "wrong-schema", pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
        failed = _trigger(client, "data_processing", "wrong-schema")
        assert failed["status"] == "failed" and "lacks 30 of the model's 30" in failed["message"]

        # reference_rebuild: the served version's drift reference file, from the dataset
        job = _trigger(client, "reference_rebuild", "validation")
        assert job["status"] == "succeeded", job
        profile = ReferenceProfile.load(job["result"]["path"])
        assert Path(job["result"]["path"]).parent.parent == tmp_path / "store" / "profiles"
        assert profile.feature_names == names and profile.metadata["dataset"] == "validation"

        # replay: every row published as an InferenceEvent on the inference topic
        _register(client, "five-rows", pd.DataFrame(split.x_train[:5], columns=names))
        job = _trigger(client, "replay", "five-rows")
        assert job["status"] == "succeeded" and job["result"]["events"] == 5, job
        wanted = {f"replay-{job['job_id']}-{i}" for i in range(5)}
        events = events_by_request(kafka_settings, wanted)
        assert set(events) >= wanted
        replayed = [events[w][0] for w in sorted(wanted)]
        assert {e["source"] for e in replayed} == {"driftline-pipeline-replay"}
        assert replayed[0]["features"]["mean radius"] == split.x_train[0][0]

        # feature_backfill: rows with entity_id (and event_time) into the views in Redis
        t = 1_764_000_000_000
        backfill = pd.DataFrame(
            {"entity_id": [7, 7, 8], "event_time": [t, t + 1000, t + 2000],
             "mean radius": [10.0, 14.0, 20.0]}
        )  # fmt: skip
        _register(client, "history", backfill)
        job = _trigger(client, "feature_backfill", "history")
        assert job["status"] == "succeeded" and job["result"]["entities_written"] == 2, job
        online = client.post(
            "/features/online",
            json={"entity_rows": [{"patient_id": 7}, {"patient_id": "8"}],
                  "feature_refs": ["patients:visits", "patients:avg_radius"]},
        ).json()  # fmt: skip
        assert online["results"][1]["values"] == [2.0, 1.0]
        assert online["results"][2]["values"] == [12.0, 20.0]
    assert version  # the app served a model throughout


def test_trigger_refusals_are_precise(app_config: ServingConfig) -> None:
    body = {"pipeline_type": "data_processing", "dataset": "validation"}
    with TestClient(create_app(app_config)) as client:
        assert client.post("/pipelines/trigger", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/pipelines/trigger", json=body, headers=wrong).status_code == 403
        unknown_type = client.post(
            "/pipelines/trigger", json={**body, "pipeline_type": "etl"}, headers=ADMIN_HEADERS
        )
        unknown_dataset = client.post(
            "/pipelines/trigger", json={**body, "dataset": "nope"}, headers=ADMIN_HEADERS
        )
        missing = client.post(
            "/pipelines/trigger", json={"pipeline_type": "replay"}, headers=ADMIN_HEADERS
        )
        unknown_job = client.get("/pipelines/00000000-0000-0000-0000-000000000000")
    assert unknown_type.status_code == 400
    assert "data_processing" in unknown_type.json()["message"]
    assert "feature_backfill" in unknown_type.json()["message"]
    assert unknown_dataset.status_code == 404
    assert "validation" in unknown_dataset.json()["message"]
    assert missing.status_code == 422 and missing.json()["location"] == "body.dataset"
    assert unknown_job.status_code == 404
