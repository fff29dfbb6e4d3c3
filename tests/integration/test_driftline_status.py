"""``driftline status`` on the embedded broker (and real Redis): the latest DriftScore of
each model, version and window kind, with the right numbers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import Producer
from typer.testing import CliRunner

from driftline.cli import app
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import producer_config
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.shadow_analysis import ShadowAnalysis, ShadowAnalysisStore
from schemas.topics import DRIFT_SCORES
from tests.records_factory import samples

T = 1_764_000_000_000


def _score(model: str, kind: str, window: int, **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(samples()["DriftScore"])
    start = T + window * 60_000 - (840_000 if kind == "sliding" else 0)
    record.update(model_name=model, model_version="3", window_kind=kind, window_start=start,
                  window_end=T + (window + 1) * 60_000, **changes)  # fmt: skip
    return record


def _features(*drifted: tuple[str, float]) -> list[dict[str, Any]]:
    out = [{"feature": n, "statistic": s, "p_value": 1e-6, "threshold": 0.1, "drifted": True,
            "sample_size": 500} for n, s in drifted]  # fmt: skip
    out.append({"feature": "calm", "statistic": 0.99, "p_value": 0.5, "threshold": 0.1,
                "drifted": False, "sample_size": 500})  # fmt: skip
    return out


@pytest.fixture
def scores_topic(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    redis_url: str,
) -> str:
    (topic,) = make_topics(DRIFT_SCORES)
    codec = SingleObjectCodec()
    records = [
        _score("fraud", "tumbling", 0, drift_score=0.1, event_count=1),
        _score("fraud", "tumbling", 2, drift_score=0.87, critical=True, event_count=4321,
               late_event_count=7, features=_features(("amount", 0.91), ("age", 0.33),
                                                      ("hour", 1.4), ("zip", 0.2))),
        _score("fraud", "tumbling", 1, drift_score=0.2, event_count=2),  # older, read last
        _score("fraud", "sliding", 2, drift_score=0.456, critical=False, event_count=60000,
               late_event_count=7, features=_features(("hour", 0.5))),
        _score("churn", "tumbling", 5, drift_score=0.0, drifted=False, event_count=99,
               late_event_count=0, features=_features()),
    ]  # fmt: skip
    producer = Producer(producer_config(kafka_settings))
    for record in records:
        producer.produce(topic, codec.encode("DriftScore", record), key=record["model_name"])
    producer.produce(topic, b"not avro", key=b"fraud")
    assert producer.flush(30) == 0
    RolloutStore(redis_client).write("fraud", RolloutState("8", 0.1, None, "3"))
    monkeypatch.setenv("DRIFTLINE_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # --bootstrap wins
    monkeypatch.setenv("DRIFTLINE_REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.delenv("DRIFTLINE_SCHEMA_REGISTRY_URL", raising=False)
    return topic


def test_status_json_names_the_latest_window_of_each_kind(
    scores_topic: str, kafka_settings: KafkaSettings
) -> None:
    result = CliRunner().invoke(
        app, ["status", "--bootstrap", kafka_settings.bootstrap_servers, "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    by = {(r["model"], r["version"], r["window_kind"]): r for r in rows}
    assert set(by) == {("churn", "3", "tumbling"), ("fraud", "3", "tumbling"),
                       ("fraud", "3", "sliding")}  # fmt: skip
    fraud = by[("fraud", "3", "tumbling")]
    assert fraud["window_start"] == T + 120_000 and fraud["window_end"] == T + 180_000
    assert fraud["drift_score"] == 0.87 and fraud["critical"] is True
    assert (fraud["event_count"], fraud["late_event_count"]) == (4321, 7)
    assert [f["feature"] for f in fraud["top_drifted_features"]] == ["hour", "amount", "age"]
    sliding = by[("fraud", "3", "sliding")]
    assert sliding["window_end"] - sliding["window_start"] == 900_000
    assert (sliding["drift_score"], sliding["event_count"]) == (0.456, 60000)
    assert by[("churn", "3", "tumbling")]["top_drifted_features"] == []


def test_status_table_prints_the_numbers_and_the_rollout(
    scores_topic: str, kafka_settings: KafkaSettings
) -> None:
    result = CliRunner().invoke(
        app, ["status", "--bootstrap", kafka_settings.bootstrap_servers, "--model", "fraud"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    tumbling = next(line for line in lines if "tumbling" in line)
    for text in ("fraud", "0.870 (drifted)", "CRITICAL", "hour (1.40), amount (0.91), age (0.33)",
                 "4321", " 7 ", "2025-11-24 16:02:00 - 16:03:00"):  # fmt: skip
        assert text in tumbling, (text, tumbling)
    sliding = next(line for line in lines if "sliding" in line)
    assert "0.456" in sliding and "60000" in sliding and "CRITICAL" not in sliding
    assert not any("churn" in line for line in lines)
    assert "1 of 6 records did not decode" in result.output
    assert "rollout fraud: champion 3, canary 8 at 10%" in result.output


def test_status_shows_the_shadows_analysis_verdict(
    scores_topic: str, kafka_settings: KafkaSettings, redis_client: redis.Redis
) -> None:
    RolloutStore(redis_client).write("fraud", RolloutState(None, 0.0, "9", "3"))
    ShadowAnalysisStore(redis_client).write(ShadowAnalysis(
        model_name="fraud", verdict="inconclusive", reason="1 of 3 evidence windows",
        shadow_version="9",
    ))  # fmt: skip
    result = CliRunner().invoke(
        app, ["status", "--bootstrap", kafka_settings.bootstrap_servers, "--model", "fraud"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "rollout fraud: champion 3, shadow 9 (shadow analysis: inconclusive: 1 of 3 evidence "
        "windows)" in " ".join(result.output.split())
    )


def test_status_without_a_broker_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, ["status", "--timeout", "1"])
    assert result.exit_code == 1
    assert "cannot read" in result.output and "127.0.0.1:1" in result.output
