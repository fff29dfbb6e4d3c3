"""``driftline deploy --model NAME --version latest|N --canary 10``: start a canary by hand.

The same start as a retrain candidate that passes its gate
(:func:`schemas.canary_start.start_canary`): alias ``challenger``, rollout state in Redis,
DeploymentEvent ``canary_started``. From there
the canary controller (``driftline canary run``) steps it up, promotes it or rolls it back,
and ``driftline canary watch`` follows it.
"""

from __future__ import annotations

from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.markup import escape

from schemas.canary_start import start_canary
from schemas.exceptions import DeliveryError, DriftlineError
from schemas.model_registry import ModelStore
from schemas.redaction import redact_credentials, redact_url
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings


def deploy(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    version: Annotated[
        str, typer.Option("--version", help="Version number, or 'latest' (the highest).")
    ] = "latest",
    canary: Annotated[
        float,
        typer.Option("--canary", min=0.0, max=100.0, help="Canary share in percent (0 < x ≤ 100)."),
    ] = 10.0,
) -> None:
    """Start a canary of a registered model version at ``--canary`` percent of the traffic."""
    console = Console()
    if canary <= 0:
        console.print("[red]--canary must be above 0 percent[/]")
        raise typer.Exit(2)
    store = ModelStore.from_settings()
    try:
        resolved = store.resolve_version(model, version)
        champion = store.alias_version(model, "champion")
        if resolved == champion:
            console.print(f"[red]version {resolved} of {model!r} is already the champion[/]")
            raise typer.Exit(1)
        client = redis.Redis.from_url(RedisSettings().url.get_secret_value(), socket_timeout=5)
        try:  # before the alias moves: Redis away must leave nothing half-done
            client.ping()
        except redis.RedisError as exc:
            where = redact_url(RedisSettings().url.get_secret_value())
            console.print(
                f"[red]cannot reach Redis at {escape(where)} (rollout state): "
                f"{escape(redact_credentials(str(exc)))}; nothing changed[/]",
                highlight=False,
            )
            raise typer.Exit(1) from None
        event = start_canary(
            model, resolved, canary / 100.0, rollout=RolloutStore(client), store=store,
            kafka=KafkaSettings(), reason=f"driftline deploy --canary {canary:g}",
            champion_version=champion,
        )  # fmt: skip
    except DeliveryError as exc:  # alias and rollout state are written: traffic goes to it
        console.print(
            f"[red]{model}: version {resolved} IS the canary at {canary:g} % (alias and "
            f"rollout state written), but its DeploymentEvent was not recorded: "
            f"{escape(redact_credentials(str(exc)))}. "
            f"`driftline rollback --model {model} --confirm` ends it.[/]",
            highlight=False,
        )
        raise typer.Exit(1) from None
    except (DriftlineError, redis.RedisError) as exc:
        console.print(f"[red]{redact_credentials(str(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"{model}: version {resolved} is the canary at {canary:g} % (champion "
        f"{champion or 'none'}); deployment {event['deployment_id']}. Follow it with "
        f"`driftline canary watch --model {model}`.",
        highlight=False,
    )
