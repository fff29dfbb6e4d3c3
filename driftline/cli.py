"""The ``driftline`` command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftline import __version__
from driftline.alerts_cli import alerts_app
from driftline.backup_cli import backup, restore
from driftline.canary_cli import canary_app
from driftline.config_view import DriftlineTyper, effective_settings
from driftline.demo import demo
from driftline.deploy_cli import deploy
from driftline.drift_cli import drift_app
from driftline.features_cli import features_app
from driftline.health_cli import health
from driftline.reference_cli import reference_app
from driftline.replay_cli import replay
from driftline.report_cli import report
from driftline.retrain_cli import retrain_app
from driftline.shadow_cli import shadow_app
from driftline.slo_cli import slo_app
from driftline.stack import LocalStack, StopRequested
from driftline.status import status
from driftline.tail import topic_app
from driftline.train import train
from driftline.validate_cli import validate
from driftline.validate_models import validate_models
from schemas.admin import ensure_topics, make_admin, wait_for_broker
from schemas.exceptions import DriftlineError
from schemas.settings import KafkaSettings
from schemas.topics import all_topics
from serving.rollback import rollback

app = DriftlineTyper(
    help="Driftline: real-time drift monitoring for ML services on Kafka.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Driftline's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(topic_app, name="topic")
app.add_typer(drift_app, name="drift")
app.add_typer(alerts_app, name="alerts")
app.add_typer(slo_app, name="slo")
app.add_typer(reference_app, name="reference")
app.add_typer(retrain_app, name="retrain")
app.add_typer(canary_app, name="canary")
app.add_typer(features_app, name="features")
app.add_typer(shadow_app, name="shadow")
app.command("train")(train)
app.command("rollback")(rollback)
app.command("deploy")(deploy)
app.command("report")(report)
app.command("status")(status)
app.command("replay")(replay)
app.command("validate")(validate)
app.command("health")(health)
app.command("validate-models")(validate_models)
app.command("backup")(backup)
app.command("restore")(restore)
app.command("demo")(demo)

console = Console()
err_console = Console(stderr=True)

READY_BANNER = "Driftline local stack is up."


@app.command()
def version() -> None:
    """Print Driftline's version."""
    console.print(__version__)


@app.command()
def up() -> None:
    """Start the local stack (broker, Redis), print where it listens, stop on Ctrl-C."""
    stopper = StopRequested()
    stopper.install()
    stack = LocalStack()
    try:
        with console.status("starting broker and Redis..."):
            stack.start()
    except DriftlineError as exc:
        err_console.print(f"[red]could not start the stack:[/] {exc}")
        raise typer.Exit(1) from None
    try:
        _print_stack(stack)
        reason = stopper.wait(watched=list(stack._processes))
    finally:
        console.print("stopping...")
        stack.stop()
    if stopper.signal_name is None:
        err_console.print(f"[red]stack stopped:[/] {reason}")
        raise typer.Exit(1)
    console.print(f"stopped cleanly ({reason}).")


def _print_stack(stack: LocalStack) -> None:
    table = Table(title="Driftline local stack")
    for column in ("service", "listens on", "origin", "pid", "ready in", "log"):
        table.add_column(column)
    for ep in stack.endpoints:
        table.add_row(
            ep.name,
            ep.address,
            ep.origin,
            str(ep.pid or "-"),
            f"{ep.startup_s:.2f} s" if ep.startup_s is not None else "-",
            ep.log or "-",
        )
    console.print(table)
    if stack.champion_version is not None:
        console.print(f"serving {stack.serving.model_name} version {stack.champion_version}")
    for name, reason in stack.skipped:
        console.print(f"skipped {name}: {reason}", markup=False, highlight=False)
    if not stack.alertmanager_url:
        console.print("without Alertmanager, alerts only go to the alerts topic.")
    created = ", ".join(stack.topics_created) or "none (all existed)"
    console.print(f"topics created: {created}")
    console.print("In another shell, point Driftline commands at this stack with:")
    for key, value in stack.operator_env().items():
        console.print(f"  export {key}={value}", markup=False, highlight=False)
    console.print("The embedded broker keeps data in memory only: it is gone after Ctrl-C.")
    console.print(READY_BANNER + " Press Ctrl-C to stop.")


@topics_app.command("ensure")
def topics_ensure(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 30.0,
) -> None:
    """Create every declared topic that is missing and verify the others."""
    kafka = KafkaSettings()
    admin = make_admin(kafka)
    try:
        wait_for_broker(admin, timeout)
        report = ensure_topics(admin, all_topics(kafka.topic_prefix), kafka.replication_factor)
    except DriftlineError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"created: {report.created or 'none'}; verified: {report.existing or 'none'}")


@topics_app.command("list")
def topics_list() -> None:
    """List the declared topics: name, partitions, retention, cleanup policy, key."""
    kafka = KafkaSettings()
    table = Table()
    for column in ("topic", "partitions", "retention", "cleanup", "key", "what flows"):
        table.add_column(column)
    for spec in all_topics(kafka.topic_prefix):
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms // 86_400_000} d"
        table.add_row(
            spec.name, str(spec.partitions), retention, spec.cleanup_policy, spec.key,
            spec.description,
        )  # fmt: skip
    console.print(table)


@app.command("config")
def show_config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    console.print_json(json.dumps(effective_settings()))
