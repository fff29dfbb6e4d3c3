"""``driftline features``: run the features processor (online feature views in Redis)."""

from __future__ import annotations

import typer

from driftline.processor_run import configure_logging, run_until_signalled
from schemas.exceptions import DriftlineError
from schemas.settings import KafkaSettings, RedisSettings
from stream.features_app import build_features_loop
from stream.settings import FeatureProcessorSettings

features_app = typer.Typer(help="Online feature views.", no_args_is_help=True)


@features_app.command("run")
def run() -> None:
    """Keep the feature views in Redis from InferenceEvents until SIGINT/SIGTERM.

    Views come from DRIFTLINE_FEATURES_VIEWS_PATH; the other settings are the
    DRIFTLINE_FEATURES_* variables (docs/features.md).
    """
    configure_logging()
    try:
        settings = FeatureProcessorSettings()
        loop = build_features_loop(KafkaSettings(), settings, RedisSettings())
    except (DriftlineError, ValueError) as exc:
        typer.echo(f"cannot start the features processor: {exc}", err=True)
        raise typer.Exit(1) from None
    run_until_signalled(
        loop,
        name="features processor (to Redis)",
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )
