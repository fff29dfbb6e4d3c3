"""``/predict`` joins a model's declared online features from Redis by ``entity_id``.

A test model (not the breast-cancer one, which needs none) is registered in the real
MLflow store with three inputs, two of them online features of a view in real Redis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from schemas.feature_store import EntityState, FeatureStore
from schemas.feature_views import load_views
from schemas.model_registry import ModelStore
from schemas.settings import FeatureViewSettings
from serving.app import create_app
from serving.state import ServingConfig

MODEL = "fraud-online"
VIEWS = f"""
[[views]]
name = "user_stats"
entity = "user_id"
[[views.features]]
name = "txn_count"
aggregate = "count"
[[views.features]]
name = "avg_amount"
aggregate = "mean"
field = "amount"

[[models]]
name = "{MODEL}"
online_features = ["user_stats:avg_amount", "user_stats:txn_count"]
"""
COLUMNS = ["amount", "avg_amount", "txn_count"]


@pytest.fixture(scope="module")
def fraud_model(serving_store: ModelStore) -> Any:
    """A classifier on (amount, avg_amount, txn_count), registered as MODEL@champion."""
    import mlflow
    import mlflow.sklearn

    from retrain.training import pip_requirements

    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(50, 20, (300, 3)), columns=COLUMNS)
    y = (x["amount"] - x["avg_amount"] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    serving_store.activate()
    with mlflow.start_run(experiment_id=serving_store.experiment_id()):
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=MODEL, pip_requirements=pip_requirements()
        )
    serving_store.set_alias(MODEL, "champion", str(info.registered_model_version))
    return model


def test_predict_joins_the_declared_online_features(
    fraud_model: Any,
    serving_config: Callable[..., ServingConfig],
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    path = tmp_path / "views.toml"
    path.write_text(VIEWS)
    views = load_views(path)
    view = views.views[0]
    u1 = EntityState()
    for t, amount in enumerate([10.0, 20.0, 60.0]):
        u1.add(view, 1_764_000_000_000 + t, {"amount": amount})
    FeatureStore(redis_client, views).write({("user_stats", "u1"): u1})
    config = dataclasses.replace(
        serving_config(redis_url=redis_url, model_name=MODEL, publish_events=False),
        features=FeatureViewSettings(views_path=path),
    )
    with TestClient(create_app(config)) as client:
        joined = client.post("/predict", json={"features": {"amount": 45.0}, "entity_id": "u1"})
        batch = client.post(
            "/predict",
            json={"instances": [
                {"features": {"amount": 45.0}, "entity_id": "u1"},
                {"features": {"amount": 45.0, "avg_amount": 80.0, "txn_count": 1.0}},
            ]},
        )  # fmt: skip
        unknown = client.post("/predict", json={"features": {"amount": 1.0}, "entity_id": "u9"})
        no_entity = client.post("/predict", json={"features": {"amount": 1.0}})
        as_list = client.post("/predict", json={"features": [1.0], "entity_id": "u1"})
    assert joined.status_code == 200, joined.text
    want = fraud_model.predict_proba(pd.DataFrame([[45.0, 30.0, 3.0]], columns=COLUMNS))[0]
    assert joined.json()["probability"] == pytest.approx(float(want.max()))
    assert joined.json()["prediction"] == int(want.argmax())
    assert batch.status_code == 200, batch.text
    rows = batch.json()["predictions"]
    explicit = fraud_model.predict_proba(pd.DataFrame([[45.0, 80.0, 1.0]], columns=COLUMNS))[0]
    assert rows[0]["probability"] == pytest.approx(float(want.max()))
    assert rows[1]["probability"] == pytest.approx(float(explicit.max()))  # no lookup needed
    assert unknown.status_code == 422 and unknown.json()["error"] == "online_feature_missing"
    assert "u9" in unknown.json()["message"]
    assert no_entity.status_code == 422 and no_entity.json()["error"] == "entity_id_required"
    assert as_list.status_code == 422 and as_list.json()["error"] == "features_by_name_required"
