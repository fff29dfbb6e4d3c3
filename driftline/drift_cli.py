"""``driftline drift``: run the drift stream processor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftline.processor_run import configure_logging, run_until_signalled
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
    configure_logging()
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

    run_until_signalled(
        loop,
        name="drift processor",
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )
