"""Promote a canary or roll it back: what the admin API, the CLI and the canary controller do.

Promote, in this order: move the MLflow alias ``champion`` to the canary version; write
the promotion to the live rollout state in Redis (no canary, ``champion_version`` = the
new one, so every serving replica reloads the alias within a second; a shadow stays, it
is a separate experiment); publish a DeploymentEvent (``promoted``). Roll back: clear the
canary in the rollout state (the champion takes all traffic) and publish a DeploymentEvent
(``rolled_back``). If Kafka does not acknowledge the event, the change itself has happened
(alias and Redis) and the caller is told so by :class:`~schemas.exceptions.DeliveryError`.

Shared by serving (``POST /admin/promote``, ``/admin/rollback``, ``driftline rollback``)
and retrain (the canary controller), so it lives in ``schemas`` (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.codec import Codec
from schemas.deployments import deployment_event, publish_deployment_event
from schemas.exceptions import DriftlineError
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import MODEL_DEPLOYMENTS


class NothingToPromoteError(DriftlineError):
    """The rollout state names no canary version."""


@dataclass(frozen=True)
class Promotion:
    """What a promotion changed."""

    model_name: str
    previous_champion: str | None
    champion_version: str
    before: RolloutState

    def event(self, reason: str, evidence: dict[str, float] | None = None) -> dict[str, Any]:
        """The DeploymentEvent that records it."""
        measured = {"canary_share_before": self.before.canary_share}
        if self.previous_champion is not None and self.previous_champion.isdigit():
            measured["previous_champion_version"] = float(self.previous_champion)
        return deployment_event(
            model_name=self.model_name,
            action="promoted",
            reason=reason,
            champion_version=self.champion_version,
            shadow_version=self.before.shadow_version,
            evidence=measured | (evidence or {}),
        )


def promote_canary(
    model_name: str,
    rollout: RolloutStore,
    store: ModelStore,
    kafka: KafkaSettings,
    reason: str = "manual promotion",
    alias: str = "champion",
    evidence: dict[str, float] | None = None,
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
    event = promotion.event(reason, evidence)
    publish_deployment_event(kafka, event)
    return promotion, event


def promote_shadow(
    model_name: str,
    rollout: RolloutStore,
    store: ModelStore,
    kafka: KafkaSettings,
    reason: str = "manual promotion of the shadow",
    alias: str = "champion",
    evidence: dict[str, float] | None = None,
) -> tuple[Promotion, dict[str, Any]]:
    """Make the shadow the champion (alias moved, rollout state ``champion_version`` and no
    shadow, DeploymentEvent ``promoted`` with evidence ``from_shadow`` = 1).

    :raises NothingToPromoteError: no shadow version in the rollout state.
    :raises ModelNotFoundError: the shadow version is not in the registry.
    :raises redis.RedisError: the rollout state could not be read or written.
    :raises DeliveryError: Kafka did not acknowledge the event (alias and Redis changed).
    """
    before = rollout.read(model_name) or RolloutState()
    if before.shadow_version is None:
        raise NothingToPromoteError(f"{model_name!r} has no shadow version to promote")
    previous = store.alias_version(model_name, alias)
    store.set_alias(model_name, alias, before.shadow_version)
    rollout.write_shadow_promotion(model_name, before.shadow_version)
    promotion = Promotion(model_name, previous, before.shadow_version, before)
    event = promotion.event(reason, {"from_shadow": 1.0} | (evidence or {}))
    event["shadow_version"] = None
    event["canary_version"] = before.canary_version
    event["canary_share"] = before.canary_share if before.canary_version else 0.0
    publish_deployment_event(kafka, event)
    return promotion, event


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback changes (or would change)."""

    model_name: str
    champion_version: str | None
    before: RolloutState

    def describe(self) -> str:
        canary = (
            f"canary version {self.before.canary_version} at share {self.before.canary_share:g}"
            if self.before.canary_version is not None
            else "no canary"
        )
        return (
            f"{self.model_name}: now {canary}; rollback sets the canary share to 0 and clears "
            f"the canary version in Redis, so champion version {self.champion_version} takes "
            f"all traffic, and publishes a DeploymentEvent (rolled_back) to "
            f"{MODEL_DEPLOYMENTS.name}"
        )

    def event(self, reason: str, evidence: dict[str, float] | None = None) -> dict[str, Any]:
        """The DeploymentEvent that records the rollback (a shadow, if any, stays)."""
        return deployment_event(
            model_name=self.model_name,
            action="rolled_back",
            reason=reason,
            champion_version=self.champion_version,
            shadow_version=self.before.shadow_version,
            evidence={"canary_share_before": self.before.canary_share} | (evidence or {}),
        )


def plan_rollback(model_name: str, rollout: RolloutStore, store: ModelStore) -> RollbackPlan:
    """Read the live state; change nothing."""
    before = rollout.read(model_name) or RolloutState()
    return RollbackPlan(model_name, store.alias_version(model_name, "champion"), before)


def execute_rollback(
    plan: RollbackPlan,
    rollout: RolloutStore,
    kafka: KafkaSettings,
    reason: str,
    codec: Codec | None = None,
    timeout_s: float = 15.0,
    evidence: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Clear the canary in Redis, then publish the DeploymentEvent; return the event.

    :raises DeliveryError: Kafka did not acknowledge the event (Redis is already changed:
        traffic is back on the champion; rerun to record it).
    """
    rollout.write_canary(plan.model_name, None, 0.0)
    event = plan.event(reason, evidence)
    publish_deployment_event(kafka, event, codec, timeout_s)
    return event
