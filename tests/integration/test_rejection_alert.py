"""A candidate the gate rejects raises RetrainCandidateRejected in a real Alertmanager.

The rejected DeploymentEvent is published by the function the retrain worker uses; the
alert evaluator (embedded broker) consumes ``model.deployments`` beside its usual topics.
A critical drift alert of the same model must not mute it (infra/alertmanager inhibit).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas.catalog import DRIFT_SCORE
from schemas.deployments import deployment_event, publish_deployment_event
from schemas.settings import KafkaSettings
from schemas.topics import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_SCORES,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from stream.alerting.app import build_alert_loop
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings
from tests.integration.alerting_helpers import AlertmanagerServer
from tests.integration.test_alerting_flow import Running, drift_score, now_minus, records_on

pytestmark = pytest.mark.integration
REASON = "version 2 (run 0123) failed the gate: holdout f1 0.0000 is below the floor 0.9"


def test_a_rejected_candidate_alerts_with_its_reason_even_during_a_critical_drift(
    kafka_settings: KafkaSettings,
    make_topics: Callable[..., list[str]],
    alertmanager: AlertmanagerServer,
    unique: Callable[[str], str],
) -> None:
    make_topics(
        DRIFT_SCORES, SLO_WINDOWS, ALERTS, RETRAIN_REQUESTS, DEAD_LETTERS, MODEL_DEPLOYMENTS
    )
    loop = build_alert_loop(
        kafka_settings,
        AlertingSettings(group_id=unique("alerting"), poll_timeout_s=0.2),
        AlertmanagerSettings(url=alertmanager.url, resend_interval_s=2.0, backoff_max_s=1.0),
    )
    running = Running(kafka_settings, loop)
    try:
        t0 = now_minus(40)  # the drift that asked for the retrain, still critical
        running.send(DRIFT_SCORES.name, DRIFT_SCORE,
                     [drift_score("fraud", i, 0.95, t0) for i in range(18)])  # fmt: skip
        assert alertmanager.wait_for(True, alertname="HighDriftScore", model="fraud")
        for action in ("canary_started", "rejected"):  # only the rejection is an alert
            event = deployment_event(
                model_name="fraud", action=action, reason=REASON,
                champion_version="1", evidence={"candidate_version": 2.0, "holdout_f1": 0.0},
            )  # fmt: skip
            publish_deployment_event(kafka_settings, event)
        [alert] = alertmanager.wait_for(True, alertname="RetrainCandidateRejected")
    finally:
        loop.stop()
        running.thread.join(30)
    assert alert["labels"] == {
        "alertname": "RetrainCandidateRejected", "severity": "warning", "evaluator": "stream",
        "model": "fraud", "variant": "candidate", "version": "2",
    }  # fmt: skip
    assert alert["annotations"]["description"] == REASON
    assert alert["annotations"]["runbook_url"].endswith("#retraincandidaterejected")
    assert alert["status"]["state"] == "active" and alert["status"]["inhibitedBy"] == []
    records = records_on(kafka_settings, ALERTS, 2, unique)
    assert [(r["alert_name"], r["state"], r["severity"]) for r in records] == [
        ("HighDriftScore", "firing", "critical"),
        ("RetrainCandidateRejected", "firing", "warning"),
    ]
    assert loop.stats.rejections == 1
