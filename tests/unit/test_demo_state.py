"""The demo's view of the loop: which records mark which stage, and that the screen renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from driftline.demo import DEMO_RULES, demo_environment
from driftline.demo_monitor import STAGES, LoopState
from driftline.demo_view import TrafficView, render, summary
from driftline.settings import DemoSettings
from retrain.settings import CanaryAnalysisSettings
from schemas.topics import ALERTS, DRIFT_SCORES, MODEL_DEPLOYMENTS, RETRAIN_REQUESTS, SLO_WINDOWS
from stream.alerting.rules import load_rules
from stream.alerting.settings import AlertingSettings
from stream.settings import DriftProcessorSettings, SloSettings

M = "breast-cancer-classifier"


def _drift(drifted: bool, model: str = M) -> dict[str, Any]:
    return {
        "model_name": model, "model_version": "1", "window_start": 1_796_000_000_000,
        "event_count": 100, "drift_score": 1.0 if drifted else 0.0, "drifted": drifted,
        "critical": drifted, "window_kind": "tumbling",
        "features": [{"feature": "mean radius", "drifted": drifted}],
    }  # fmt: skip


def _deployment(action: str, canary: str | None, champion: str = "1") -> dict[str, Any]:
    return {"model_name": M, "action": action, "canary_version": canary, "canary_share": 0.1,
            "champion_version": champion, "reason": "r"}  # fmt: skip


def test_each_stage_is_marked_by_its_record_once_and_other_models_are_ignored() -> None:
    state = LoopState(model_name=M, run_of=lambda model, version: f"run-of-{version}")
    state.apply(DRIFT_SCORES, _drift(False))
    state.apply(DRIFT_SCORES, _drift(True, model="other"))
    assert state.milestones == {} and state.ignored == 1
    state.apply(DRIFT_SCORES, _drift(True))
    state.apply(ALERTS, {"fingerprint": "f", "alert_name": "HighDriftScore",
                         "severity": "critical", "state": "firing", "annotations": {}})  # fmt: skip
    state.apply(RETRAIN_REQUESTS, {"model_name": M, "trigger": "drift", "urgency": "normal"})
    state.apply(MODEL_DEPLOYMENTS, _deployment("canary_started", "2"))
    assert state.missing() == ["promotion"] and not state.complete()
    state.apply(MODEL_DEPLOYMENTS, _deployment("promoted", None, champion="2"))
    assert state.complete() and list(state.milestones) == list(STAGES)
    assert state.milestones["MLflow run"].detail == "run run-of-2 registered version 2"
    assert state.milestones["drift detected"].detail.endswith("1 features drifted")
    first = state.milestones["drift detected"].at
    state.apply(DRIFT_SCORES, _drift(True))
    assert state.milestones["drift detected"].at == first


def test_the_screen_and_the_summary_render(tmp_path: Path) -> None:
    state = LoopState(model_name=M)
    state.apply(DRIFT_SCORES, _drift(True))
    state.apply(SLO_WINDOWS, {"model_name": M, "variant": "baseline", "model_version": "1",
                              "request_count": 100, "error_rate": 0.0, "latency_p50_ms": 2.0,
                              "latency_p95_ms": 4.0, "latency_p99_ms": 6.0})  # fmt: skip
    console = Console(record=True, width=160)
    console.print(render(state, TrafficView(10, 9, 1, 20.0, "drifting", 12.0, 150.0)))
    screen = console.export_text()
    assert "drift score per window" in screen and "CRITICAL" in screen
    assert "sent 10  accepted 9  failed 1" in screen and "waiting" in screen
    lines = summary(list(state.milestones.values()), None, tmp_path / "r.html", tmp_path,
                    state.missing())  # fmt: skip
    assert any(line.startswith("  not reached: alert, retrain") for line in lines)
    assert f"DRIFTLINE_DATA_DIR={tmp_path} make mlflow-ui" in "\n".join(lines)


def test_the_demo_time_scale_is_valid_settings_and_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    env = demo_environment(DemoSettings(window_s=5))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert CanaryAnalysisSettings().windows == 1
    assert DriftProcessorSettings().window_s == SloSettings().window_s == 5.0
    assert AlertingSettings().rules_path == DEMO_RULES
    assert env["DRIFTLINE_DRIFT_WINDOW_S"] == env["DRIFTLINE_SLO_WINDOW_S"] == "5"
    rules = {r.name: r for r in load_rules(DEMO_RULES).rules}
    assert rules["HighDriftScore"].for_s == 10.0 and rules["HighDriftScore"].retrain
    assert rules["HighDriftScore"].urgency != "high"  # the cooldown must hold
