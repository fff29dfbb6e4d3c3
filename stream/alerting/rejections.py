"""A rejected retrain candidate becomes an alert: ``RetrainCandidateRejected`` (warning).

The retrain worker records a gate failure as a DeploymentEvent ``rejected`` on
``model.deployments`` (with the reason and the candidate's metrics). The alert evaluator
also consumes that topic and turns each such event into a :class:`Notice`: Alertmanager
gets it through the same background sender as every other alert, and the ``alerts``
topic gets its Alert record. It lives here, not in the worker, because ``retrain`` may not
import ``stream.alerting`` (DESIGN.md) and the evaluator already owns delivery, retries and
the Alert records.

A rejection is an event, not a condition that clears: the alert fires at the event's
time and ends by itself ``ttl_ms`` later (``endsAt``; Alertmanager then resolves it), so
nobody has to resolve it and a replay after a restart posts the same alert (same labels,
same ``startsAt``/``endsAt``), which Alertmanager de-duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from stream.alerting.alerts import Notice, fingerprint, rfc3339

ALERT_NAME: Final = "RetrainCandidateRejected"
SEVERITY: Final = "warning"


def candidate_version(event: Mapping[str, Any]) -> str:
    """The rejected version: the event's evidence ``candidate_version``, else ``unknown``."""
    found = (event.get("evidence") or {}).get("candidate_version")
    return str(int(found)) if found is not None else "unknown"


def rejection_notice(event: Mapping[str, Any], runbook_base_url: str, ttl_ms: int) -> Notice | None:
    """The firing alert of a ``rejected`` DeploymentEvent; None for any other action."""
    if event.get("action") != "rejected":
        return None
    model = str(event["model_name"])
    version = candidate_version(event)
    labels = {
        "alertname": ALERT_NAME,
        "severity": SEVERITY,
        "evaluator": "stream",
        "model": model,
        "variant": "candidate",
        "version": version,
    }
    metrics = ", ".join(
        f"{k}={v:.4g}" for k, v in sorted((event.get("evidence") or {}).items())
        if k != "candidate_version"
    )  # fmt: skip
    starts = int(event["event_time"])
    annotations = {
        "summary": f"{model}: retrained version {version} was rejected by the validation gate",
        "description": str(event["reason"]),
        "runbook_url": f"{runbook_base_url}#{ALERT_NAME.lower()}",
        "champion_version": str(event.get("champion_version") or "none"),
        "deployment_id": str(event["deployment_id"]),
        "metrics": metrics or "none",
        "window": rfc3339(starts),
    }
    return Notice(fingerprint(labels), labels, annotations, "firing", starts, starts + ttl_ms)
