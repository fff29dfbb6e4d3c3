"""DeploymentEvents: how rollback, promote and the retrain gate record what they changed.

Each is one record on ``model.deployments`` (compacted), keyed by model name, so the
topic's last record for a model says what takes its traffic now. Publishing waits for
the broker's acknowledgement: the caller must know whether the change was recorded.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from schemas.catalog import DEPLOYMENT_EVENT
from schemas.codec import Codec
from schemas.delivery import produce_and_wait
from schemas.events import now_ms
from schemas.settings import KafkaSettings
from schemas.topics import MODEL_DEPLOYMENTS

DeploymentAction = Literal["canary_started", "canary_step", "promoted", "rolled_back", "rejected"]


def deployment_event(
    *,
    model_name: str,
    action: DeploymentAction,
    reason: str,
    champion_version: str | None,
    canary_version: str | None = None,
    canary_share: float = 0.0,
    shadow_version: str | None = None,
    evidence: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One DeploymentEvent as a dict ready for the codec."""
    return {
        "deployment_id": str(uuid.uuid4()),
        "model_name": model_name,
        "champion_version": champion_version,
        "canary_version": canary_version,
        "canary_share": canary_share,
        "shadow_version": shadow_version,
        "action": action,
        "reason": reason,
        "evidence": evidence or {},
        "event_time": now_ms(),
    }


def publish_deployment_event(
    kafka: KafkaSettings,
    event: dict[str, Any],
    codec: Codec | None = None,
    timeout_s: float = 15.0,
) -> None:
    """Produce ``event`` to ``model.deployments`` and wait for the acknowledgement.

    :raises DeliveryError: Kafka did not acknowledge it within ``timeout_s``.
    """
    produce_and_wait(
        kafka, MODEL_DEPLOYMENTS, DEPLOYMENT_EVENT, event, event["model_name"], codec, timeout_s
    )
