"""Promote the canary: it becomes the champion every replica serves.

``POST /admin/promote`` (bearer token) does, in this order: move the MLflow alias
``champion`` to the canary version; write the promotion to the live rollout state in
Redis (no canary, ``champion_version`` = the new one, so every replica reloads the alias
within a second; a shadow stays, it is a separate experiment); publish a DeploymentEvent
(``promoted``) to ``model.deployments``. If Kafka does not acknowledge the event, the
promotion itself has happened (alias and Redis changed) and the caller is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.deployments import deployment_event, publish_deployment_event
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from serving.exceptions import ServingError


class NothingToPromoteError(ServingError):
    """The rollout state names no canary version."""


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed."""

    model_name: str
    previous_champion: str | None
    champion_version: str
    before: RolloutState

    def event(self, reason: str) -> dict[str, Any]:
        """The DeploymentEvent that records it."""
        evidence = {"canary_share_before": self.before.canary_share}
        if self.previous_champion is not None and self.previous_champion.isdigit():
            evidence["previous_champion_version"] = float(self.previous_champion)
        return deployment_event(
            model_name=self.model_name,
            action="promoted",
            reason=reason,
            champion_version=self.champion_version,
            shadow_version=self.before.shadow_version,
            evidence=evidence,
        )


def promote_canary(
    model_name: str,
    rollout: RolloutStore,
    store: ModelStore,
    kafka: KafkaSettings,
    reason: str = "manual promotion",
    alias: str = "champion",
) -> tuple[Promotion, dict[str, Any]]:
    """Make the canary the champion; return what changed and the published event.

    :raises NothingToPromoteError: no canary version in the rollout state.
    :raises ModelNotFoundError: the canary version is not in the registry.
    :raises redis.RedisError: the rollout state could not be read or written.
    :raises DeliveryError: Kafka did not acknowledge the event (alias and Redis already
        changed; repeat the call to record it).
    """
    before = rollout.read(model_name) or RolloutState()
    if before.canary_version is None:
        raise NothingToPromoteError(f"{model_name!r} has no canary version to promote")
    previous = store.alias_version(model_name, alias)
    store.set_alias(model_name, alias, before.canary_version)
    rollout.write_promotion(model_name, before.canary_version)
    promotion = Promotion(model_name, previous, before.canary_version, before)
    event = promotion.event(reason)
    publish_deployment_event(kafka, event)
    return promotion, event
