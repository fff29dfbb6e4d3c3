"""The shadow analysis rules (retrain/shadow_analysis.py) and what the controller does with
a verdict (retrain/shadow_controller.py), on fakes of Redis, MLflow and the promotion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from retrain import shadow_controller
from retrain.settings import ShadowAnalysisSettings
from retrain.shadow_analysis import ShadowWindow, judge_shadow, judge_window
from retrain.shadow_controller import TAG_DECISION, ShadowController
from schemas.rollout_state import RolloutState
from schemas.settings import KafkaSettings
from schemas.shadow_analysis import ShadowAnalysis

pytestmark = pytest.mark.unit

SETTINGS = ShadowAnalysisSettings(
    min_agreement=0.95, agreement_floor=0.8, windows=3, min_pairs=50, max_latency_ratio=1.5,
    latency_floor_ms=5.0,
)  # fmt: skip


def window(
    start: int, agreement: float, pairs: int = 100, shadow_p99: float = 10.0
) -> ShadowWindow:
    return ShadowWindow(start, pairs, agreement, 10.0, shadow_p99, "1")


def test_three_agreeing_windows_in_a_row_pass() -> None:
    verdict = judge_shadow([window(i, 0.97) for i in range(3)], SETTINGS)
    assert verdict.decision == "pass"
    assert verdict.evidence["windows_passed"] == 3.0
    assert verdict.evidence["min_agreement_rate"] == 0.97
    assert verdict.evidence["pairs"] == 300.0


def test_fewer_windows_than_required_are_inconclusive() -> None:
    verdict = judge_shadow([window(0, 0.99), window(1, 0.99)], SETTINGS)
    assert verdict.decision == "inconclusive" and "2 of 3 evidence windows" in verdict.reason


def test_windows_with_too_few_pairs_are_not_evidence_and_do_not_break_a_run() -> None:
    sparse = window(1, 0.10, pairs=49)
    assert not sparse.is_evidence(SETTINGS)
    windows = [window(0, 0.97), sparse, window(2, 0.97), window(3, 0.97)]
    assert judge_shadow(windows, SETTINGS).decision == "pass"
    assert judge_shadow(windows[:3], SETTINGS).decision == "inconclusive"


def test_a_window_below_the_threshold_holds_the_pass_back_until_enough_newer_ones_pass() -> None:
    windows = [window(0, 0.97), window(1, 0.90), window(2, 0.97)]
    verdict = judge_shadow(windows, SETTINGS)
    assert verdict.decision == "inconclusive"
    assert "window 1: agreement 0.9000 < 0.95" in verdict.reason
    assert judge_shadow([*windows, window(3, 0.96)], SETTINGS).decision == "inconclusive"
    assert judge_shadow([*windows, window(3, 0.96), window(4, 0.96)], SETTINGS).decision == "pass"


def test_a_slow_shadow_does_not_pass_even_when_it_agrees() -> None:
    slow = window(2, 0.99, shadow_p99=15.1)  # champion 10 ms, allowed 15 ms
    assert judge_window(slow, SETTINGS) == "too_slow"
    verdict = judge_shadow([window(0, 0.99), window(1, 0.99), slow], SETTINGS)
    assert verdict.decision == "inconclusive" and "shadow p99 15.1 ms > 15.0 ms" in verdict.reason
    assert judge_window(window(0, 0.99, shadow_p99=15.0), SETTINGS) == "pass"


def test_a_p99_under_the_floor_always_passes_the_latency_rule() -> None:
    fast = ShadowWindow(0, 100, 0.99, 1.0, 4.9, None)  # 4.9 x the champion, under 5 ms
    assert judge_window(fast, SETTINGS) == "pass"


def test_agreement_below_the_floor_in_every_window_of_a_run_fails() -> None:
    verdict = judge_shadow([window(i, 0.6 + i / 100) for i in range(3)], SETTINGS)
    assert verdict.decision == "fail"
    assert "agree < floor 0.8 (lowest 0.6000)" in verdict.reason


def test_one_window_above_the_floor_keeps_a_poor_shadow_inconclusive() -> None:
    windows = [window(0, 0.6), window(1, 0.85), window(2, 0.6)]
    assert judge_shadow(windows, SETTINGS).decision == "inconclusive"


def test_only_the_newest_windows_decide() -> None:
    """An old bad run is history once a full run of newer windows passes."""
    windows = [window(i, 0.5) for i in range(3)] + [window(i, 0.97) for i in range(3, 6)]
    assert judge_shadow(windows, SETTINGS).decision == "pass"


def test_a_floor_above_the_threshold_is_refused() -> None:
    with pytest.raises(ValidationError, match="agreement_floor"):
        ShadowAnalysisSettings(min_agreement=0.9, agreement_floor=0.95)


# --- the controller ---------------------------------------------------------------------


@dataclass
class FakeRollout:
    state: RolloutState | None
    client: Any = None

    def read(self, model_name: str) -> RolloutState | None:
        return self.state

    def write_shadow(self, model_name: str, version: str | None) -> None:
        assert self.state is not None
        self.state = RolloutState(
            self.state.canary_version, self.state.canary_share, version,
            self.state.champion_version,
        )  # fmt: skip


@dataclass
class FakeMlflow:
    tags: dict[tuple[str, str], str] = field(default_factory=dict)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.tags[(run_id, key)] = value


@dataclass
class FakeStore:
    mlflow: FakeMlflow = field(default_factory=FakeMlflow)

    def run_id(self, model_name: str, version: str) -> str:
        return f"run-of-{version}"

    def activate(self) -> FakeMlflow:
        return self.mlflow


@dataclass
class FakeAnalyses:
    written: list[ShadowAnalysis] = field(default_factory=list)

    def write(self, analysis: ShadowAnalysis) -> None:
        self.written.append(analysis)


def comparison(start: int, agreement: float, shadow: str = "2", pairs: int = 100) -> dict[str, Any]:
    return {
        "model_name": "m", "champion_version": "1", "shadow_version": shadow,
        "window_start": start, "window_end": start + 60_000, "pair_count": pairs,
        "agreement_rate": agreement, "champion_latency_p99_ms": 10.0,
        "shadow_latency_p99_ms": 11.0,
    }  # fmt: skip


def controller(
    auto: bool, state: RolloutState | None = None
) -> tuple[ShadowController, FakeRollout, FakeStore, FakeAnalyses]:
    rollout = FakeRollout(state if state is not None else RolloutState(shadow_version="2"))
    store, analyses = FakeStore(), FakeAnalyses()
    settings = SETTINGS.model_copy(update={"auto": auto})
    built = ShadowController(
        settings,
        KafkaSettings(),
        rollout,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        lambda: 42,
        analyses,  # type: ignore[arg-type]
    )
    return built, rollout, store, analyses


def test_a_passing_shadow_is_promoted_with_the_verdicts_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    promoted: list[tuple[str, str, dict[str, float] | None]] = []

    def promote(model: str, *args: Any, evidence: dict[str, float] | None = None) -> None:
        promoted.append((model, args[-1], evidence))

    monkeypatch.setattr(shadow_controller, "promote_shadow", promote)
    built, _, store, analyses = controller(auto=True)
    assert built.observe(comparison(0, 0.97)) is None
    assert built.observe(comparison(60_000, 0.98)) is None
    decision = built.observe(comparison(120_000, 0.99))
    assert decision is not None and (decision.action, decision.version) == ("promoted", "2")
    ((model, reason, evidence),) = promoted
    assert model == "m" and reason.startswith("shadow analysis passed: 3 windows in a row")
    assert evidence is not None and evidence["min_agreement_rate"] == 0.97
    assert store.mlflow.tags[("run-of-2", TAG_DECISION)] == "promote"
    last = analyses.written[-1]
    assert (last.verdict, last.action, last.windows_passed, last.auto) == (
        "pass",
        "promoted",
        3,
        True,
    )
    assert [a.action for a in analyses.written] == [None, None, "promoted"]


def test_a_clearly_failing_shadow_is_stopped() -> None:
    built, rollout, store, analyses = controller(auto=True)
    for i in range(3):
        decision = built.observe(comparison(i * 60_000, 0.5))
    assert decision is not None and decision.action == "stopped"
    assert rollout.state is not None and rollout.state.shadow_version is None
    assert store.mlflow.tags[("run-of-2", TAG_DECISION)] == "stop"
    assert analyses.written[-1].action == "stopped" and analyses.written[-1].verdict == "fail"


def test_without_auto_verdicts_are_recorded_but_nothing_is_done() -> None:
    built, rollout, store, analyses = controller(auto=False)
    for i in range(3):
        assert built.observe(comparison(i * 60_000, 0.5)) is None
    assert rollout.state == RolloutState(shadow_version="2")
    assert not store.mlflow.tags
    assert analyses.written[-1].verdict == "fail" and analyses.written[-1].action is None


def test_windows_of_another_shadow_version_or_without_a_shadow_are_ignored() -> None:
    built, _, _, analyses = controller(auto=True)
    for i in range(3):
        assert built.observe(comparison(i * 60_000, 0.99, shadow="7")) is None
    assert not analyses.written
    idle, _, _, idle_analyses = controller(auto=True, state=RolloutState())
    assert idle.observe(comparison(0, 0.99)) is None and not idle_analyses.written


def test_a_new_shadow_version_starts_from_no_windows() -> None:
    built, rollout, _, analyses = controller(auto=False)
    built.observe(comparison(0, 0.99))
    built.observe(comparison(60_000, 0.99))
    rollout.state = RolloutState(shadow_version="3")
    built.observe(comparison(120_000, 0.99, shadow="3"))
    assert analyses.written[-1].shadow_version == "3"
    assert analyses.written[-1].windows_passed == 1


def test_sparse_windows_are_counted_as_skipped_and_the_kept_windows_are_bounded() -> None:
    built, _, _, analyses = controller(auto=False)
    built.observe(comparison(0, 0.99, pairs=3))
    for i in range(1, 10):
        built.observe(comparison(i * 60_000, 0.9))
    last = analyses.written[-1]
    assert last.skipped_windows == 1
    assert [w.window_start for w in last.windows] == [420_000, 480_000, 540_000]
    assert len(built.trials["m"].windows) == SETTINGS.windows
