"""Send all traffic back to the champion: ``python -m serving.rollback --confirm``.

Also ``driftline rollback``. Without ``--confirm`` it prints what it would do and changes
nothing. With it, it clears the canary in the live rollout state (Redis; every serving
replica follows within a second) and publishes a DeploymentEvent (action
``rolled_back``) to ``model.deployments``, keyed by model name, so the compacted topic's
last record for the model says the champion takes all traffic.
"""

from __future__ import annotations

from shlex import quote
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.markup import escape

from schemas.exceptions import DeliveryError, ModelNotFoundError
from schemas.model_registry import ModelStore
from schemas.promotion import RollbackPlan, execute_rollback, plan_rollback
from schemas.redaction import redact_credentials
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import MODEL_DEPLOYMENTS
from serving.settings import ServingSettings


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
    store = ModelStore.from_settings()
    try:
        store.require_model(name)
    except ModelNotFoundError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    try:
        plan = plan_rollback(name, rollout, store)
    except redis.RedisError as exc:
        console.print(f"[red]cannot read rollout state from Redis:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(plan.describe(), highlight=False)
    if not confirm:
        console.print("dry run: nothing changed (add --confirm to roll back)")
        return
    try:
        event = execute_rollback(plan, rollout, KafkaSettings(), reason)
    except redis.RedisError as exc:  # the canary fields are written first: nothing changed
        console.print(f"[red]rollback failed, traffic unchanged: cannot write the rollout "
                      f"state to Redis: {escape(redact_credentials(str(exc)))}[/]",
                      highlight=False)  # fmt: skip
        raise typer.Exit(1) from None
    except DeliveryError as exc:  # Redis is written: every replica follows within a second
        console.print(f"[red]{_unrecorded(plan, reason, exc)}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"rolled back: deployment {event['deployment_id']}", highlight=False)


def _unrecorded(plan: RollbackPlan, reason: str, exc: DeliveryError) -> str:
    """What happened when only the DeploymentEvent failed, and the command that records it
    (a rerun finds no canary, writes nothing new and publishes the event)."""
    was = plan.before
    canary = (
        f"canary version {was.canary_version} (share {was.canary_share:g}) no longer serves"
        if was.canary_version is not None
        else "there was no canary"
    )
    rerun = f"driftline rollback --model {plan.model_name} --confirm --reason {quote(reason)}"
    return escape(
        f"rolled back, but not recorded: all traffic of {plan.model_name} now goes to champion "
        f"version {plan.champion_version or '(alias champion)'} and {canary} (Redis rollout "
        f"state written); the DeploymentEvent (rolled_back) was NOT published to "
        f"{MODEL_DEPLOYMENTS.name}: {redact_credentials(str(exc))}. Once Kafka is reachable, "
        f"publish it with `{rerun}` (it changes no traffic)."
    )


def main() -> None:
    """Entry point of ``python -m serving.rollback``."""
    typer.run(rollback)


if __name__ == "__main__":
    main()
