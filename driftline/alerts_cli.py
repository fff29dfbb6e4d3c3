"""``driftline alerts``: run the alert evaluator, check a rules file."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from prometheus_client import start_http_server

from schemas.exceptions import DriftlineError
from schemas.redaction import redact_url
from schemas.settings import KafkaSettings
from stream.alerting.app import build_alert_loop
from stream.alerting.rules import format_duration, load_rules
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings

alerts_app = typer.Typer(help="The alert evaluator.", no_args_is_help=True)


@alerts_app.command("run")
def run(
    rules: Annotated[
        Path | None,
        typer.Option(help="Rules TOML (default: DRIFTLINE_ALERTING_RULES_PATH, else shipped)."),
    ] = None,
) -> None:
    """Evaluate the rules on drift.scores and slo.windows until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = AlertingSettings()
    if rules is not None:
        settings = settings.model_copy(update={"rules_path": rules})
    alertmanager = AlertmanagerSettings()
    try:
        loop = build_alert_loop(KafkaSettings(), settings, alertmanager)
    except DriftlineError as exc:
        typer.echo(f"cannot start the alert evaluator: {exc}", err=True)
        raise typer.Exit(1) from None

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    target = (
        redact_url(alertmanager.url)
        if alertmanager.url
        else "no Alertmanager (DRIFTLINE_ALERTMANAGER_URL unset)"
    )
    typer.echo(
        f"alert evaluator: {loop.drift_topic}, {loop.slo_topic} -> {loop.alerts_topic}, "
        f"{loop.retrain_topic}, {target} (group {settings.group_id})"
    )
    out = loop.run()
    typer.echo(
        f"stopped: {out.records} records ({out.replayed} replayed), {out.alerts} alert "
        f"changes, {out.retrain_requests} retrain requests, {out.dead_letters} dead letters"
    )


@alerts_app.command("rules")
def rules_list(
    rules: Annotated[Path | None, typer.Option(help="Rules TOML to check and list.")] = None,
) -> None:
    """Validate a rules file and list its rules (exit 1 with the error when invalid)."""
    try:
        config = load_rules(rules or AlertingSettings().rules_path)
    except DriftlineError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for r in config.rules:
        metric = " & ".join(r.metric) or "(PromQL)"
        typer.echo(
            f"{r.name:<25} {r.severity:<8} {r.source:<10} {metric} {r.op} {r.threshold:g} "
            f"for {format_duration(r.for_s)}, clears at {r.clear:g}"
        )
