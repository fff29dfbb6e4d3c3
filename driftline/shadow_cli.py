"""``driftline shadow run``: compare a model's shadow with its served answers, per window."""

from __future__ import annotations

import signal
from types import FrameType

import typer
from prometheus_client import start_http_server

from driftline.processor_run import configure_logging
from schemas.settings import KafkaSettings
from stream.settings import ShadowSettings
from stream.shadow_app import ShadowLoop

shadow_app = typer.Typer(help="Shadow comparison (shadow vs served answers).", no_args_is_help=True)


@shadow_app.command("run")
def run() -> None:
    """Join shadow and served InferenceEvents by request id; publish one ShadowComparison
    per model and window until SIGINT/SIGTERM (DRIFTLINE_SHADOW_* settings)."""
    configure_logging()
    settings = ShadowSettings()
    loop = ShadowLoop(KafkaSettings(), settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    typer.echo(
        f"shadow comparison: {loop.input_topic} -> {loop.output_topic} (group {settings.group_id})"
    )
    published = loop.run()
    typer.echo(f"stopped: {published} ShadowComparisons")
