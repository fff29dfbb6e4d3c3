"""What ``driftline canary watch`` prints per DeploymentEvent and how it ends."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.canary_watch import FINAL, PROMOTED, ROLLED_BACK, describe_event, describe_state
from schemas.rollout_state import RolloutState

pytestmark = pytest.mark.unit


def _event(action: str, **changes: Any) -> dict[str, Any]:
    return {
        "action": action, "event_time": 0, "champion_version": "1", "canary_version": "2",
        "canary_share": 0.5, "reason": "why", "evidence": {},
    } | changes  # fmt: skip


def test_a_step_shows_its_new_share_reason_and_evidence_numbers_readably() -> None:
    line = describe_event(
        _event("canary_step", evidence={"window_start": 1.796e12, "canary_error_rate": 0.0123456})
    )
    assert line == (
        "00:00:00 canary_step: version 2 at 50%; why "
        "[canary_error_rate=0.01235, window_start=1796000000000]"
    )


def test_final_decisions_and_their_exit_codes() -> None:
    assert describe_event(_event("promoted", champion_version="2")).endswith(
        "promoted: version 2 is the champion; why"
    )
    assert "rolled_back (champion 1); why" in describe_event(_event("rolled_back"))
    assert FINAL == {"promoted": PROMOTED, "rolled_back": ROLLED_BACK} and PROMOTED == 0
    assert "canary_step" not in FINAL and "rejected" not in FINAL


def test_the_state_line() -> None:
    assert describe_state("m", RolloutState("3", 0.1)) == "m: canary version 3 at 10%"
    assert describe_state("m", RolloutState(None, 0.0)) == "m: no canary in progress"
    assert describe_state("m", None) == "m: no canary in progress"
