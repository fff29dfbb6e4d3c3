"""``driftline retrain``: retrain a model here, replay a run's training set, or run the worker.

- ``driftline retrain --model NAME [--urgent] [--reason TEXT]``: one manual retrain in
  this process, through the same lock, cooldown, gate and rollout as the worker, with a
  progress display.
- ``driftline retrain --replay RUN_ID``: rebuild the run's training set from its recorded
  offset ranges and check it against the run's fingerprint (exit 1 when it differs).
- ``driftline retrain run``: the worker, a consumer group on ``retrain.requests``.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import redis
import typer
from prometheus_client import start_http_server
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrain.dataset import replay_training_set
from retrain.job import load_lineage
from retrain.settings import RetrainSettings
from retrain.worker import RetrainWorker, make_handler
from schemas.codec import make_codec
from schemas.exceptions import DriftlineError
from schemas.model_registry import ModelStore
from schemas.redaction import redact_credentials, redact_url
from schemas.retrain_requests import retrain_request
from schemas.settings import KafkaSettings, RedisSettings

retrain_app = typer.Typer(help="Retrain models (issue 8).", invoke_without_command=True)
console = Console()
FINGERPRINT_TAG = "driftline.training_set_sha256"


@retrain_app.callback()
def retrain(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Retrain this registered model now.")] = None,
    urgent: Annotated[bool, typer.Option(help="Bypass the cooldown (never the lock).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why; recorded with the run.")] = None,
    replay: Annotated[
        str | None, typer.Option(help="Rebuild this run's training set and check it.")
    ] = None,
) -> None:
    """Retrain ``--model`` here, or ``--replay`` a run's training set; ``run``: the worker."""
    if ctx.invoked_subcommand is not None:
        return
    if (model is None) == (replay is None):
        console.print("give exactly one of --model NAME or --replay RUN_ID (or the `run` command)")
        raise typer.Exit(2)
    try:
        if replay is not None:
            _replay(replay)
        else:
            assert model is not None  # noqa: S101 - checked above
            _retrain_here(model, urgent, reason)
    except DriftlineError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    except redis.RedisError as exc:  # the model's lock and cooldown live there
        where = redact_url(RedisSettings().url.get_secret_value())
        console.print(
            f"[red]cannot reach Redis at {escape(where)} (training lock and cooldown): "
            f"{escape(redact_credentials(str(exc)))}[/]"
        )
        raise typer.Exit(1) from None


def _retrain_here(model: str, urgent: bool, reason: str | None) -> None:
    settings = RetrainSettings()
    store = ModelStore.from_settings()
    store.require_model(model)  # a typo must not register a new model
    handler = make_handler(settings, KafkaSettings(), RedisSettings(), store)
    request = retrain_request(
        model, "manual", "driftline retrain", urgent=urgent, reason=reason or "driftline retrain"
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("waiting for the model's training lock", total=None)

        def step(description: str) -> None:
            progress.update(task, description=description)

        outcome = handler.handle(request, progress=step)
        progress.update(task, description=f"done: {outcome.status}", total=1, completed=1)
    table = Table(title=f"retrain of {model}")
    table.add_column("field")
    table.add_column("value")
    for name, value in (
        ("outcome", outcome.status),
        ("MLflow run", outcome.run_id or "-"),
        ("model version", outcome.version or "-"),
        ("detail", outcome.detail),
        ("training set sha256", outcome.fingerprint or "-"),
    ):
        table.add_row(name, str(value))
    console.print(table)
    if outcome.status == "failed":
        raise typer.Exit(1)


def _replay(run_id: str) -> None:
    store = ModelStore.from_settings()
    lineage = load_lineage(store, run_id)
    if lineage is None:
        console.print(f"[red]run {run_id} has no training_set.json lineage (not a retrain run?)[/]")
        raise typer.Exit(1)
    with console.status("reading the recorded offset ranges"):
        rebuilt = replay_training_set(KafkaSettings(), RetrainSettings(), lineage, make_codec())
    recorded = store.activate().get_run(run_id).data.tags.get(FINGERPRINT_TAG)
    table = Table(title=f"training set of run {run_id}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("training rows", str(len(rebuilt.y_train)))
    table.add_row("recent labelled rows", str(rebuilt.recent_rows))
    for r in [*lineage.inference, *lineage.feedback]:
        table.add_row("range", r.describe())
    table.add_row("sha256 rebuilt", rebuilt.fingerprint())
    table.add_row("sha256 recorded", recorded or "-")
    console.print(table)
    if recorded != rebuilt.fingerprint():
        console.print("[red]the rebuilt training set differs from the recorded one[/]")
        raise typer.Exit(1)
    console.print("identical to the training set the run recorded")


@retrain_app.command("run")
def run() -> None:
    """The retrain worker: consume retrain.requests until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = RetrainSettings()
    kafka = KafkaSettings()
    handler = make_handler(settings, kafka, RedisSettings(), ModelStore.from_settings())

    def joined() -> None:
        # The launcher's health check looks for this line (driftline.stack.RETRAIN_READY):
        # printed once the group assigned partitions, so "ready" means in the group.
        print(f"retrain worker: consuming {worker.topic} (group {settings.group_id})", flush=True)  # noqa: T201

    worker = RetrainWorker(settings, kafka, handler, on_joined=joined)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    worker.run()
    console.print(f"stopped after {worker.handled} requests", highlight=False)
