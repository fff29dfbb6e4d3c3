"""Shape a transition into what leaves the evaluator: an Alertmanager alert, an Alert
record for the ``alerts`` topic, and (for rules that ask) a RetrainRequest.

The same :class:`Notice` feeds Alertmanager and the topic, so the two never disagree.
Its fingerprint (a hash of the alert's labels) is the Alert record's key; the
RetrainRequest's idempotency key is built from the rule, the identity and the breach's
first window, so replaying the same windows asks for the same retrain, not a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from stream.alerting.evaluator import Transition
from stream.alerting.rules import RulesConfig, format_duration

#: Alert record ``severity`` enum (schemas/avro/alert.avsc) for each rule severity: the
#: enum has no ``high``; the exact severity is always in ``labels["severity"]``.
RECORD_SEVERITY = {"critical": "critical", "high": "warning", "warning": "warning", "info": "info"}

REQUESTED_BY = "driftline-alerting"


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert's current state, as Alertmanager and the alerts topic receive it."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: Literal["firing", "resolved"]
    starts_at: int
    ends_at: int | None

    def to_alertmanager(self, now_ms: int, firing_ttl_ms: int) -> dict[str, Any]:
        """The ``POST /api/v2/alerts`` item; a firing alert expires ``firing_ttl_ms`` after
        ``now_ms`` unless re-sent (so a dead evaluator's alerts resolve themselves)."""
        ends = self.ends_at if self.ends_at is not None else now_ms + firing_ttl_ms
        if self.state == "resolved":
            ends = min(ends, now_ms)  # event time ahead of the clock must still resolve
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(ends),
        }

    def to_record(self) -> dict[str, Any]:
        """The Alert record (schemas/avro/alert.avsc)."""
        return {
            "alert_name": self.labels["alertname"],
            "fingerprint": self.fingerprint,
            "severity": RECORD_SEVERITY[self.labels["severity"]],
            "state": self.state,
            "labels": self.labels,
            "annotations": self.annotations,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }


def rfc3339(ms: int) -> str:
    """Milliseconds since the epoch as Alertmanager's RFC 3339 UTC timestamp."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def fingerprint(labels: dict[str, str]) -> str:
    """Stable hash of an alert's label set: one per alert name and labels."""
    text = "\x00".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def notice(t: Transition, config: RulesConfig) -> Notice:
    """The Notice of a transition, annotations filled from the rule's templates."""
    context = template_context(t)
    annotations = {
        "summary": t.rule.summary.format(**context),
        "description": t.rule.description.format(**context),
        "runbook_url": config.runbook_url(t.rule),
        "value": f"{t.value:g}",
        "window": context["window"],
    }
    if t.observation.version is not None:
        annotations["model_version"] = t.observation.version
    return Notice(
        fingerprint=fingerprint(t.labels),
        labels=t.labels,
        annotations=annotations,
        state=t.state,
        starts_at=t.since,
        ends_at=t.at if t.state == "resolved" else None,
    )


def template_context(t: Transition) -> dict[str, Any]:
    obs = t.observation
    features = [f["feature"] for f in obs.record.get("features", ()) if f.get("drifted")]
    return {
        "model": obs.model,
        "version": obs.version or "-",
        "variant": obs.variant,
        "value": t.value,
        "threshold": t.rule.threshold,
        "clear_threshold": t.rule.clear,
        "for": format_duration(t.rule.for_s),
        "window": f"{rfc3339(obs.window_start)}..{rfc3339(obs.window_end)}",
        "since": rfc3339(t.since),
        "requests": obs.count,
        "drifted_features": ", ".join(features) or "none flagged",
    }


def idempotency_key(t: Transition) -> str:
    """Same breach, same key: rule, identity and the breach's first window start."""
    identity = ",".join(f"{k}={v}" for k, v in sorted(t.labels.items()) if k != "severity")
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return f"{t.rule.alert}:{t.observation.model}:{digest}:{t.since}"


def retrain_request(t: Transition, now_ms: int) -> dict[str, Any]:
    """The RetrainRequest (schemas/avro/retrain_request.avsc) a firing rule asks for."""
    obs = t.observation
    scores = {t.rule.metric[0] if len(t.rule.metric) == 1 else "value": t.value}
    if t.rule.source == "drift":
        scores.update(
            {f"feature:{f['feature']}": float(f["statistic"]) for f in obs.record["features"]}
        )
    return {
        "idempotency_key": idempotency_key(t),
        "model_name": obs.model,
        "model_version": obs.version,
        "trigger": "drift" if t.rule.source == "drift" else "slo",
        "evidence": {
            "window_start": t.since,
            "window_end": t.at,
            "scores": scores,
            "details": {
                "alertname": t.rule.alert,
                "rule": t.rule.name,
                "variant": obs.variant,
                "threshold": f"{t.rule.op} {t.rule.threshold:g}",
                "for": format_duration(t.rule.for_s),
                "fingerprint": fingerprint(t.labels),
                **template_details(t),
            },
        },
        "urgency": t.rule.urgency,
        "requested_by": REQUESTED_BY,
        "requested_at": now_ms,
        "mlflow_run_id": None,
    }


def template_details(t: Transition) -> dict[str, str]:
    """Readable evidence for the retrain worker's logs and the MLflow run."""
    context = template_context(t)
    details = {"summary": t.rule.summary.format(**context)}
    if t.rule.source == "drift":
        details["drifted_features"] = str(context["drifted_features"])
    return details
