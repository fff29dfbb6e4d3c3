"""``driftline replay`` through a real serving (uvicorn, real broker, real MLflow) and
straight onto the inference topic with the producer SDK."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.scenarios import PREDICTION_LOGIT_SHIFT, shift_probability
from retrain.training import build_pipeline
from schemas.breast_cancer import TARGET, feature_names, load_split
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, INFERENCE_FEEDBACK
from serving.app import create_app
from serving.state import ServingConfig
from tests.integration.http_serving import http_server
from tests.integration.retrain_helpers import records_on
from tests.integration.serving_helpers import events_by_request


@pytest.fixture
def kafka_env(kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """Point the CLI's SDK producer at this test's broker and topic prefix."""
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("DRIFTLINE_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    return kafka_settings


def test_a_parquet_file_replays_through_predict_one_event_per_row(
    serving_config: Callable[..., ServingConfig],
    make_topics: Callable[..., list[str]],
    kafka_env: KafkaSettings,
    tmp_path: Path,
) -> None:
    make_topics(INFERENCE_EVENTS, INFERENCE_FEEDBACK)
    split = load_split()
    frame = pd.DataFrame(split.x_validation[:30], columns=list(feature_names()))
    frame[TARGET] = split.y_validation[:30]
    frame["request_id"] = [f"file-{i}" for i in range(30)]
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path)
    with http_server(create_app(serving_config())) as url:
        result = CliRunner().invoke(
            app, ["replay", str(path), "--url", url, "--rate", "200", "--concurrency", "4",
                  "--feedback"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 30, accepted 30, failed 0" in result.output
    wanted = {f"file-{i}" for i in range(30)}
    events = events_by_request(kafka_env, wanted)
    assert set(events) == wanted and all(len(v) == 1 for v in events.values())
    first = events["file-0"][0]
    assert first["outcome"] == "ok" and first["source"] == "driftline-serving"
    assert first["features"] == dict(zip(feature_names(), split.x_validation[0], strict=True))
    labels = {r["request_id"]: r["label"] for r in records_on(kafka_env, INFERENCE_FEEDBACK, 30)}
    assert labels == {f"file-{i}": float(split.y_validation[i]) for i in range(30)}


def test_count_bounds_a_scenario_through_predict_and_failures_are_counted(
    serving_config: Callable[..., ServingConfig],
    make_topics: Callable[..., list[str]],
    kafka_env: KafkaSettings,
) -> None:
    make_topics(INFERENCE_EVENTS)
    with http_server(create_app(serving_config())) as url:
        ok = CliRunner().invoke(app, ["replay", "--scenario", "sudden", "--url", url,
                                      "--count", "25"])  # fmt: skip
        wrong_model = CliRunner().invoke(
            app, ["replay", "--scenario", "no-drift", "--url", url, "--count", "5",
                  "--model", "no-such-model"],
        )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "sent 25, accepted 25, failed 0" in ok.output
    assert wrong_model.exit_code == 1, wrong_model.output
    assert "sent 5, accepted 0, failed 5" in wrong_model.output
    assert "HTTP 404" in wrong_model.output


def test_prediction_only_scenario_goes_onto_the_topic_with_the_pushed_predictions(
    make_topics: Callable[..., list[str]], kafka_env: KafkaSettings
) -> None:
    make_topics(INFERENCE_EVENTS, INFERENCE_FEEDBACK)
    result = CliRunner().invoke(
        app, ["replay", "--scenario", "prediction-only", "--to", "topic", "--count", "60",
              "--onset", "0.5", "--feedback", "--model-version", "7"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 60, accepted 60, failed 0" in result.output
    events: list[dict[str, Any]] = records_on(kafka_env, INFERENCE_EVENTS, 60)
    assert len(events) == 60
    events.sort(key=lambda e: e["request_id"])
    assert {e["source"] for e in events} == {"driftline-replay"}
    assert {e["model_version"] for e in events} == {"7"}
    p1 = np.array([e["probabilities"]["1"] for e in events])
    # Before the onset the baseline's own answers; from it on, its logit pushed by +8.
    split = load_split()
    baseline = build_pipeline().fit(split.x_train, split.y_train)
    x = np.array([[e["features"][n] for n in feature_names()] for e in events])
    own = baseline.predict_proba(x)[:, 1]
    shift = np.where(np.arange(60) >= 30, PREDICTION_LOGIT_SHIFT, 0.0)
    np.testing.assert_allclose(p1, shift_probability(own, shift), rtol=1e-6, atol=1e-9)
    assert (p1[30:] > 0.5).sum() > (p1[:30] > 0.5).sum()
    assert [e["prediction"] for e in events] == [float(p >= 0.5) for p in p1]
    assert len(records_on(kafka_env, INFERENCE_FEEDBACK, 60)) == 60
