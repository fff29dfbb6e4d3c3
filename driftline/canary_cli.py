"""``driftline canary run``: the canary controller (steps, promotes or rolls back canaries);
``driftline canary watch``: follow one canary until it is decided."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import redis
import typer
from confluent_kafka import KafkaException
from prometheus_client import start_http_server
from rich.console import Console
from rich.markup import escape

from driftline.canary_watch import INTERRUPTED, NOTHING, CanaryWatcher
from retrain.canary_controller import CanaryController, CanaryLoop
from retrain.settings import CanaryAnalysisSettings, ShadowAnalysisSettings
from retrain.shadow_controller import ShadowController
from schemas.codec import make_codec
from schemas.exceptions import DriftlineError
from schemas.model_registry import ModelStore
from schemas.redaction import redact_credentials
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings

canary_app = typer.Typer(help="Canary analysis and rollout steps.", no_args_is_help=True)


@canary_app.command("run")
def run() -> None:
    """Judge canaries on slo.windows; step, promote or roll back until SIGINT/SIGTERM.
    Also judge shadows on shadow.comparisons (promote or stop: DRIFTLINE_CANARY_SHADOW_AUTO)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = CanaryAnalysisSettings()
    client = redis.Redis.from_url(RedisSettings().url.get_secret_value(), socket_timeout=5.0)
    controller = CanaryController(
        settings, KafkaSettings(), RolloutStore(client), ModelStore.from_settings()
    )
    shadow = ShadowController(
        ShadowAnalysisSettings(), controller.kafka, controller.rollout, controller.store
    )

    def joined() -> None:
        # Printed once the group assigned partitions: the launcher waits for this line
        # (driftline.stack.CANARY_READY), so "ready" means in the group, not about to join.
        typer.echo(
            f"canary controller: consuming {loop.topic}, {loop.drift_topic} and "
            f"{loop.shadow_topic} (group {settings.group_id}; shadow actions "
            f"{'on' if shadow.settings.auto else 'off'})"
        )

    loop = CanaryLoop(controller, shadow=shadow, on_joined=joined)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    loop.run()


@canary_app.command("watch")
def watch(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (exit 3).")
    ] = None,
) -> None:
    """Follow a canary until it is promoted (exit 0) or rolled back (exit 1), or Ctrl-C."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        ModelStore.from_settings().require_model(model)
    except DriftlineError as exc:
        console.print(f"[red]{redact_credentials(str(exc))}[/]")
        raise typer.Exit(NOTHING) from None
    client = redis.Redis.from_url(RedisSettings().url.get_secret_value(), socket_timeout=5.0)
    watcher = CanaryWatcher(
        model, KafkaSettings(), RolloutStore(client), make_codec(),
        lambda line: console.print(line, markup=False), timeout,
    )  # fmt: skip
    try:
        code = watcher.run()
    except KeyboardInterrupt:
        code = INTERRUPTED
    except redis.RedisError as exc:
        console.print(f"[red]cannot read the rollout state: {redact_credentials(str(exc))}[/]")
        code = NOTHING
    except KafkaException as exc:  # the broker does not answer: no decision can be read
        console.print(f"[red]cannot read model.deployments: {escape(str(exc))}[/]")
        code = NOTHING
    raise typer.Exit(code)
