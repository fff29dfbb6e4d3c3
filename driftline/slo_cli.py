"""``driftline slo``: run the SLO stream processor."""

from __future__ import annotations

import typer

from driftline.processor_run import configure_logging, run_until_signalled
from schemas.exceptions import DriftlineError
from schemas.settings import KafkaSettings
from stream.settings import SloSettings
from stream.slo_app import build_slo_loop

slo_app = typer.Typer(help="The SLO stream processor.", no_args_is_help=True)


@slo_app.command("run")
def run() -> None:
    """Turn InferenceEvents into SloWindows until SIGINT/SIGTERM, then commit and close.

    Each SloWindow holds a model variant's counts, latency quantiles and burn rates for
    one window; settings are the DRIFTLINE_SLO_* variables (docs/slo.md).
    """
    configure_logging()
    try:
        settings = SloSettings()
        loop = build_slo_loop(KafkaSettings(), settings)
    except (DriftlineError, ValueError) as exc:
        typer.echo(f"cannot start the SLO processor: {exc}", err=True)
        raise typer.Exit(1) from None
    run_until_signalled(
        loop,
        name="SLO processor",
        group_id=settings.group_id,
        metrics_port=settings.metrics_port,
        metrics_host=settings.metrics_host,
    )
