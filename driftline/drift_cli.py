"""``driftline drift``: run the drift stream processor."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import start_http_server

from schemas.exceptions import DriftlineError
from schemas.settings import KafkaSettings
from stream.drift_app import build_drift_loop
from stream.settings import DriftProcessorSettings, DriftStatsSettings

drift_app = typer.Typer(help="The drift stream processor.", no_args_is_help=True)


@drift_app.command("run")
def run(
    reference: Annotated[
        Path | None,
        typer.Option(help="Profile file or directory (default: DRIFTLINE_DRIFT_REFERENCE_PATH)."),
    ] = None,
) -> None:
    """Score InferenceEvents into DriftScores until SIGINT/SIGTERM, then commit and close."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = DriftProcessorSettings()
    stats = DriftStatsSettings()
    if reference is not None:
        stats = stats.model_copy(update={"reference_path": reference})
    if stats.reference_path is None:
        typer.echo(
            "no reference profiles: set DRIFTLINE_DRIFT_REFERENCE_PATH or --reference", err=True
        )
        raise typer.Exit(2)
    try:
        loop = build_drift_loop(KafkaSettings(), settings, stats)
    except DriftlineError as exc:
        typer.echo(f"cannot start the drift processor: {exc}", err=True)
        raise typer.Exit(1) from None

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    typer.echo(
        f"drift processor: {loop.input_topic} -> {loop.output_topic} (group {settings.group_id})"
    )
    stats_out = loop.run()
    typer.echo(
        f"stopped: {stats_out.messages} events, {stats_out.outputs} DriftScores, "
        f"{stats_out.dead_letters} dead letters, {stats_out.commits} commits"
    )
