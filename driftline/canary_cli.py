"""``driftline canary run``: the canary controller (steps, promotes or rolls back canaries)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import redis
import typer

from retrain.canary_controller import CanaryController, CanaryLoop
from retrain.settings import CanaryAnalysisSettings
from schemas.model_registry import ModelStore
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings

canary_app = typer.Typer(help="Canary analysis and rollout steps.", no_args_is_help=True)


@canary_app.command("run")
def run() -> None:
    """Judge canaries on slo.windows; step, promote or roll back until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = CanaryAnalysisSettings()
    client = redis.Redis.from_url(RedisSettings().url.get_secret_value(), socket_timeout=5.0)
    controller = CanaryController(
        settings, KafkaSettings(), RolloutStore(client), ModelStore.from_settings()
    )
    loop = CanaryLoop(controller)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"canary controller: consuming {loop.topic} (group {settings.group_id})")
    loop.run()
