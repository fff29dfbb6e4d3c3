"""Replay inputs (files, scenarios), pacing, and validate's verdicts on odd answers."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from driftline.exceptions import ReplayInputError
from driftline.replay import (
    Pacer,
    ReplayBounds,
    TopicSender,
    file_events,
    known_features,
    scenario_events,
)
from driftline.scenarios import SCENARIOS, SUDDEN_COLUMNS, generate
from driftline.validate import Validator
from schemas.breast_cancer import DEFAULT_MODEL_NAME, feature_names, load_split

NAMES = list(feature_names())


def _frame(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame(load_split().x_validation[:rows], columns=NAMES)


def test_a_csv_file_gives_one_event_per_row_with_its_label_and_id(tmp_path: Path) -> None:
    frame = _frame()
    frame["target"] = [1, 0, 1]
    frame["request_id"] = ["a", "b", "c"]
    frame.to_csv(tmp_path / "f.csv", index=False)
    events = file_events(tmp_path / "f.csv", known_features(DEFAULT_MODEL_NAME))
    assert [e.request_id for e in events] == ["a", "b", "c"]
    assert [e.label for e in events] == [1.0, 0.0, 1.0]
    assert list(events[0].features) == NAMES
    assert events[0].features["mean radius"] == pytest.approx(frame["mean radius"][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["mean radius", "worst area"]),
         "missing feature columns ['mean radius', 'worst area']"),
        (lambda f: f.assign(colour=1.0), "unknown columns ['colour']"),
        (lambda f: f.assign(**{"mean area": "big"}), "non-numeric columns ['mean area']"),
        (lambda f: f.assign(**{"mean area": [1.0, None, None]}),
         "empty cells in columns {'mean area': 2}"),
    ],
)  # fmt: skip
def test_bad_columns_are_named(tmp_path: Path, change: object, message: str) -> None:
    path = tmp_path / "bad.csv"
    change(_frame()).to_csv(path, index=False)  # type: ignore[operator]
    with pytest.raises(ReplayInputError) as raised:
        file_events(path, known_features(DEFAULT_MODEL_NAME))
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_the_cli_refuses_bad_input_with_exit_code_2_naming_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    _frame().drop(columns=["mean texture"]).to_csv(path, index=False)
    runner = CliRunner()
    bad_file = runner.invoke(app, ["replay", str(path), "--url", "http://127.0.0.1:1"])
    assert bad_file.exit_code == 2
    assert "missing feature columns ['mean texture']" in bad_file.output
    (tmp_path / "x.json").write_text("{}")
    wrong_kind = runner.invoke(app, ["replay", str(tmp_path / "x.json")])
    assert wrong_kind.exit_code == 2 and "not a .csv or .parquet file" in wrong_kind.output
    unknown = runner.invoke(app, ["replay", "--scenario", "sideways"])
    assert unknown.exit_code == 2 and "known: no-drift, sudden" in unknown.output
    neither = runner.invoke(app, ["replay"])
    assert neither.exit_code == 2 and "either a FILE or --scenario" in neither.output
    http_bug = runner.invoke(app, ["replay", "--scenario", "prediction-only"])
    assert http_bug.exit_code == 2 and "use --to topic" in http_bug.output


def test_sudden_moves_only_its_columns_and_only_from_onset() -> None:
    x = load_split().x_train
    base = generate("no-drift", x, 100, 40, np.random.default_rng(1)).features
    sudden = generate("sudden", x, 100, 40, np.random.default_rng(1)).features
    moved = sudden - base
    assert not moved[:40].any()
    others = [i for i in range(30) if i not in range(30)[SUDDEN_COLUMNS]]
    assert not moved[:, others].any()
    np.testing.assert_allclose(moved[40:, SUDDEN_COLUMNS], np.broadcast_to(
        1.5 * x[:, SUDDEN_COLUMNS].std(axis=0), (60, 5)))  # fmt: skip


def test_gradual_ramps_and_concept_flips_labels_from_onset() -> None:
    x, y = load_split().x_train, load_split().y_train
    base = generate("no-drift", x, 50, 10, np.random.default_rng(2)).features
    gradual = generate("gradual", x, 50, 10, np.random.default_rng(2), ramp=20).features
    share = (gradual - base)[:, 0] / x[:, 0].std()
    np.testing.assert_allclose(share, np.clip((np.arange(50) - 10) / 20, 0, 1), atol=1e-9)
    concept = generate("concept", x, 50, 10, np.random.default_rng(2))
    labels = concept.labels(y)
    truth = y[concept.rows]
    assert (labels[:10] == truth[:10]).all() and (labels[10:] == 1 - truth[10:]).all()


def test_every_scenario_replays_and_unknown_names_list_the_known_ones() -> None:
    for name in SCENARIOS:
        events = scenario_events(name, 20, with_predictions=True)
        assert len(events) == 20 and all(e.probability is not None for e in events)
    with pytest.raises(ValueError, match="known: no-drift, sudden, gradual"):
        generate("sideways", load_split().x_train, 10, 5, np.random.default_rng(0))


def test_pacer_schedules_against_the_start() -> None:
    pacer = Pacer(10.0)
    assert 0.85 < pacer.delay(10) <= 1.0
    assert Pacer(None).delay(10**6) == 0.0
    with pytest.raises(ValueError, match="rate must be > 0"):
        Pacer(0.0)


def _validator(handler: object) -> Validator:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return Validator("http://serving", admin_token="t", transport=transport)


def test_a_bare_404_is_not_deployed_and_an_open_admin_api_fails_security() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin":
            return httpx.Response(200, json={})
        if request.url.path == "/health":
            return httpx.Response(503, json={})
        return httpx.Response(404, json={"error": "http_404", "message": "Not Found"})

    validator = _validator(handler)
    assert validator.pipeline_trigger().detail.endswith("answered 404: not deployed")
    assert validator.online_features().detail.endswith("answered 404: not deployed")
    security = validator.security()
    assert (security.status, security.detail) == (
        "fail",
        "GET /admin with an invalid token answered 200",
    )
    performance = validator.performance()
    assert performance.status == "fail" and performance.detail.startswith("0/10 health calls")


def test_a_404_naming_a_dataset_is_reported_with_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "unknown dataset 'reference'; known: [x]"})

    result = _validator(handler).pipeline_trigger()
    assert result.status == "fail"
    assert result.detail == (
        "POST /pipelines/trigger answered 404: unknown dataset 'reference'; known: [x]"
    )


def test_online_features_retries_with_the_entity_key_the_view_joins_on() -> None:
    asked: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        if body["feature_refs"] == ["driftline_validate:probe"]:
            return httpx.Response(400, json={"message": "unknown ref; known: ['user_stats:n']"})
        if "user_id" not in body["entity_rows"][0]:
            return httpx.Response(400, json={"message": "row 0 has no 'user_id'"})
        return httpx.Response(200, json={"results": []})

    result = _validator(handler).online_features()
    assert (result.status, result.detail) == ("pass", "user_stats:n retrieved (1 refs known)")
    assert asked[-1] == {"entity_rows": [{"user_id": "driftline-validate"}],
                         "feature_refs": ["user_stats:n"]}  # fmt: skip


class _SilentBroker:
    """A producer whose records Kafka never acknowledges (the broker is down)."""

    def __init__(self) -> None:
        self.futures: list[Future[None]] = []

    def send_inference(self, **_: object) -> Future[None]:
        self.futures.append(Future())
        return self.futures[-1]

    def flush(self, timeout_s: float = 30.0) -> int:
        return sum(not f.done() for f in self.futures)


def test_topic_replay_counts_unacknowledged_records_as_failed() -> None:
    broker = _SilentBroker()
    events = scenario_events("no-drift", 3, seed=1)
    sender = TopicSender(broker, DEFAULT_MODEL_NAME, flush_timeout_s=0.1)  # type: ignore[arg-type]
    counts = sender.run(events, ReplayBounds())
    assert (counts.sent, counts.accepted, counts.failed) == (3, 0, 3)
    assert "not acknowledged by Kafka within 0.1 s" in counts.failures[0]
    broker.futures[0].set_result(None)  # a late acknowledgement does not count twice
    assert (counts.accepted, counts.failed) == (0, 3)
