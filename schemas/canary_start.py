"""Start a canary: what a passing retrain candidate and ``driftline deploy`` both do.

In this order: alias ``challenger`` on the version in the MLflow registry; the canary
fields of the live rollout state in Redis (serving's replicas follow within a second; a
shadow or champion set by others stays); a DeploymentEvent ``canary_started`` on
``model.deployments`` (key = model), so the canary controller, ``driftline canary watch``
and the compacted topic all see the same start. If Kafka does not acknowledge the event,
the canary already takes traffic and the caller learns it from
:class:`~schemas.exceptions.DeliveryError`.

It lives in ``schemas`` beside :mod:`schemas.promotion` because the retrain worker and
the CLI (and any later writer) must write the exact same state (docs/decisions.md).
"""

from __future__ import annotations

from typing import Any

from schemas.codec import Codec
from schemas.deployments import deployment_event, publish_deployment_event
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings

CHALLENGER_ALIAS = "challenger"


def start_canary(
    model_name: str,
    version: str,
    share: float,
    *,
    rollout: RolloutStore,
    store: ModelStore,
    kafka: KafkaSettings,
    reason: str,
    champion_version: str | None,
    evidence: dict[str, float] | None = None,
    codec: Codec | None = None,
) -> dict[str, Any]:
    """Make ``version`` the canary at ``share``; return the published DeploymentEvent.

    :raises ModelNotFoundError: no such version in the registry.
    :raises redis.RedisError: the rollout state could not be written.
    :raises DeliveryError: Kafka did not acknowledge the event (alias and Redis changed).
    """
    store.set_alias(model_name, CHALLENGER_ALIAS, version)
    rollout.write_canary(model_name, version, share)
    current = rollout.read(model_name) or RolloutState()
    event = deployment_event(
        model_name=model_name,
        action="canary_started",
        reason=reason,
        champion_version=champion_version,
        canary_version=version,
        canary_share=share,
        shadow_version=current.shadow_version,
        evidence=evidence,
    )
    publish_deployment_event(kafka, event, codec)
    return event
