"""A rejected DeploymentEvent becomes RetrainCandidateRejected; the sender stops re-sending
an event's alert once its own end has passed."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.deployments import deployment_event
from stream.alerting.rejections import ALERT_NAME, rejection_notice
from tests.unit.test_alert_sender import Clock, FakeAlertmanager, alert, make

pytestmark = pytest.mark.unit
HOUR_MS = 3_600_000


def _event(action: str = "rejected", **evidence: float) -> dict[str, Any]:
    event = deployment_event(
        model_name="fraud", action=action,  # type: ignore[arg-type]
        reason="version 7 (run abc) failed the gate: holdout f1 0.0000 is below the floor 0.9",
        champion_version="3", evidence={"candidate_version": 7.0, "holdout_f1": 0.0} | evidence,
    )  # fmt: skip
    event["event_time"] = 1_764_000_000_000
    return event


def test_a_rejection_is_a_warning_with_the_reason_that_ends_by_itself() -> None:
    notice = rejection_notice(_event(), "docs/runbook.md", HOUR_MS)
    assert notice is not None
    assert notice.labels == {
        "alertname": ALERT_NAME, "severity": "warning", "evaluator": "stream",
        "model": "fraud", "variant": "candidate", "version": "7",
    }  # fmt: skip
    assert notice.annotations["description"].endswith("holdout f1 0.0000 is below the floor 0.9")
    assert notice.annotations["runbook_url"] == "docs/runbook.md#retraincandidaterejected"
    assert notice.annotations["metrics"] == "holdout_f1=0"
    assert notice.annotations["champion_version"] == "3"
    assert (notice.state, notice.starts_at, notice.ends_at) == (
        "firing", 1_764_000_000_000, 1_764_000_000_000 + HOUR_MS,
    )  # fmt: skip
    body = notice.to_alertmanager(now_ms=1_764_000_001_000, firing_ttl_ms=240_000)
    assert body["endsAt"] == "2025-11-24T17:00:00.000+00:00"  # its own end, not the re-send ttl


def test_other_actions_raise_nothing() -> None:
    for action in ("canary_started", "canary_step", "promoted", "rolled_back"):
        assert rejection_notice(_event(action), "docs/runbook.md", HOUR_MS) is None


def test_an_event_alert_is_not_re_sent_after_its_end() -> None:
    am, clock = FakeAlertmanager(), Clock()
    sender = make(am, clock, resend_interval_s=10.0)
    notice = rejection_notice(_event(), "docs/runbook.md", HOUR_MS)
    assert notice is not None
    clock.now = notice.starts_at / 1000
    sender.submit(notice)
    sender.submit(alert("Ongoing"))  # a rule's firing alert: no end of its own
    assert sender.attempt() and len(am.batches[-1]) == 2
    clock.now += 20  # re-send due, the rejection still live
    assert sender.attempt() and len(am.batches[-1]) == 2
    clock.now = (notice.starts_at + HOUR_MS) / 1000 + 20  # past its end: only the rule's
    assert sender.attempt()
    assert [a["labels"]["alertname"] for a in am.batches[-1]] == ["Ongoing"]
    assert notice.fingerprint not in sender.active
