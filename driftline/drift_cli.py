"""``driftline drift``: run the drift stream processor, and the merge step of its
partitioned mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from driftline.processor_run import configure_logging, run_until_signalled
from schemas.exceptions import DriftlineError
from stream.drift_app import build_drift_loop
from stream.merge_app import build_merge_loop
from stream.runtime.loop import ProcessorLoop
from stream.settings import DriftMergeSettings, DriftProcessorSettings, DriftStatsSettings

drift_app = typer.Typer(help="The drift stream processor.", no_args_is_help=True)

Reference = Annotated[
    Path | None,
    typer.Option(help="Profile file or directory (default: DRIFTLINE_DRIFT_REFERENCE_PATH)."),
]


@drift_app.command("run")
def run(reference: Reference = None) -> None:
    """Score InferenceEvents into DriftScores until SIGINT/SIGTERM, then commit and close.

    With DRIFTLINE_DRIFT_PARTITIONED=true it sends window partials to drift.partials
    instead, for `driftline drift merge`.
    """
    settings = DriftProcessorSettings()
    name = "drift processor (partitioned)" if settings.partitioned else "drift processor"
    _serve(name, lambda stats: build_drift_loop(None, settings, stats), reference, settings)


@drift_app.command("merge")
def merge(reference: Reference = None) -> None:
    """Merge the window partials of partitioned drift processors into DriftScores until
    SIGINT/SIGTERM, then commit and close."""
    settings = DriftMergeSettings()
    _serve(
        "drift merge step",
        lambda stats: build_merge_loop(None, settings, stats),
        reference,
        settings,
    )


def _serve(
    name: str,
    build: Callable[[DriftStatsSettings], ProcessorLoop],
    reference: Path | None,
    settings: DriftProcessorSettings | DriftMergeSettings,
) -> None:
    """Build the loop on the profiles (exit 2 without any, 1 if it cannot start) and run
    it in the foreground until signalled."""
    configure_logging()
    stats = DriftStatsSettings()
    if reference is not None:
        stats = stats.model_copy(update={"reference_path": reference})
    if stats.reference_path is None:
        typer.echo(
            "no reference profiles: set DRIFTLINE_DRIFT_REFERENCE_PATH or --reference", err=True
        )
        raise typer.Exit(2)
    try:
        loop = build(stats)
    except DriftlineError as exc:
        typer.echo(f"cannot start the {name}: {exc}", err=True)
        raise typer.Exit(1) from None
    run_until_signalled(
        loop,
        name=name,
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )
