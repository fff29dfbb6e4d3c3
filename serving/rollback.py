"""Send all traffic back to the champion: ``python -m serving.rollback --confirm``.

Also ``driftline rollback``. Without ``--confirm`` it prints what it would do and changes
nothing. With it, it clears the canary in the live rollout state (Redis; every serving
replica follows within a second) and publishes a DeploymentEvent (action
``rolled_back``) to ``model.deployments``, keyed by model name, so the compacted topic's
last record for the model says the champion takes all traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import redis
import typer
from rich.console import Console

from schemas.codec import Codec
from schemas.deployments import deployment_event, publish_deployment_event
from schemas.exceptions import DeliveryError
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import MODEL_DEPLOYMENTS
from serving.settings import ServingSettings


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

    def event(self, reason: str) -> dict[str, Any]:
        """The DeploymentEvent that records the rollback (a shadow, if any, stays)."""
        return deployment_event(
            model_name=self.model_name,
            action="rolled_back",
            reason=reason,
            champion_version=self.champion_version,
            shadow_version=self.before.shadow_version,
            evidence={"canary_share_before": self.before.canary_share},
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
) -> dict[str, Any]:
    """Clear the canary in Redis, then publish the DeploymentEvent; return the event.

    :raises DeliveryError: Kafka did not acknowledge the event (Redis is already changed:
        traffic is back on the champion; rerun to record it).
    """
    rollout.write_canary(plan.model_name, None, 0.0)
    event = plan.event(reason)
    publish_deployment_event(kafka, event, codec, timeout_s)
    return event


def rollback(
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Really do it (otherwise only print the plan).")
    ] = False,
    model_name: Annotated[
        str | None, typer.Option("--model", help="Registered model (default: the served one).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, recorded in the DeploymentEvent.")] = (
        "manual rollback"
    ),
) -> None:
    """Send all traffic back to the champion and record it as a DeploymentEvent."""
    console = Console()
    name = model_name or ServingSettings().model_name
    client = redis.Redis.from_url(RedisSettings().url.get_secret_value(), socket_timeout=5)
    rollout = RolloutStore(client)
    try:
        plan = plan_rollback(name, rollout, ModelStore.from_settings())
    except redis.RedisError as exc:
        console.print(f"[red]cannot read rollout state from Redis:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(plan.describe(), highlight=False)
    if not confirm:
        console.print("dry run: nothing changed (add --confirm to roll back)")
        return
    try:
        event = execute_rollback(plan, rollout, KafkaSettings(), reason)
    except (redis.RedisError, DeliveryError) as exc:
        console.print(f"[red]rollback incomplete:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"rolled back: deployment {event['deployment_id']}", highlight=False)


def main() -> None:
    """Entry point of ``python -m serving.rollback``."""
    typer.run(rollback)


if __name__ == "__main__":
    main()
