"""``driftline drift``: run the drift stream processor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftline.processor_run import configure_logging, run_until_signalled
from schemas.exceptions import DriftlineError
from schemas.settings import KafkaSettings
from stream.drift_app import build_drift_loop
from stream.merge_app import build_merge_loop
from stream.settings import DriftMergeSettings, DriftProcessorSettings, DriftStatsSettings

drift_app = typer.Typer(help="The drift stream processor.", no_args_is_help=True)


@drift_app.command("run")
def run(
    reference: Annotated[
        Path | None,
        typer.Option(help="Profile file or directory (default: DRIFTLINE_DRIFT_REFERENCE_PATH)."),
    ] = None,
) -> None:
    """Score InferenceEvents into DriftScores until SIGINT/SIGTERM, then commit and close.

    With DRIFTLINE_DRIFT_PARTITIONED=true it sends window partials to drift.partials
    instead, for `driftline drift merge`.
    """
    configure_logging()
    settings = DriftProcessorSettings()
    stats = _stats(reference)
    try:
        loop = build_drift_loop(KafkaSettings(), settings, stats)
    except DriftlineError as exc:
        typer.echo(f"cannot start the drift processor: {exc}", err=True)
        raise typer.Exit(1) from None

    run_until_signalled(
        loop,
        name="drift processor (partitioned)" if settings.partitioned else "drift processor",
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )


@drift_app.command("merge")
def merge(
    reference: Annotated[
        Path | None,
        typer.Option(help="Profile file or directory (default: DRIFTLINE_DRIFT_REFERENCE_PATH)."),
    ] = None,
) -> None:
    """Merge the window partials of partitioned drift processors into DriftScores until
    SIGINT/SIGTERM, then commit and close."""
    configure_logging()
    settings = DriftMergeSettings()
    stats = _stats(reference)
    try:
        loop = build_merge_loop(KafkaSettings(), settings, stats)
    except DriftlineError as exc:
        typer.echo(f"cannot start the drift merge step: {exc}", err=True)
        raise typer.Exit(1) from None
    run_until_signalled(
        loop,
        name="drift merge step",
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )


def _stats(reference: Path | None) -> DriftStatsSettings:
    """The statistics settings with ``--reference`` applied; exit 2 without profiles."""
    stats = DriftStatsSettings()
    if reference is not None:
        stats = stats.model_copy(update={"reference_path": reference})
    if stats.reference_path is None:
        typer.echo(
            "no reference profiles: set DRIFTLINE_DRIFT_REFERENCE_PATH or --reference", err=True
        )
        raise typer.Exit(2)
    return stats
