"""``driftline train``: train the baseline, register it as champion, write drift fixtures."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrain.drift_fixtures import write_drift_fixtures
from retrain.training import train_and_register
from schemas.model_registry import ModelStore
from schemas.redaction import redact_url
from serving.settings import DriftFixtureSettings, ServingSettings

console = Console()


def train(
    model_name: Annotated[
        str | None, typer.Option(help="Registered model name (default: the served one).")
    ] = None,
    alias: Annotated[str, typer.Option(help="Registry alias to point at the new version.")] = (
        "champion"
    ),
    fixtures: Annotated[
        bool, typer.Option(help="Also write the drift fixture CSVs (DRIFT_*_PATH).")
    ] = True,
    if_missing: Annotated[
        bool, typer.Option(help="Do nothing when the alias already points at a version.")
    ] = False,
) -> None:
    """Train the breast-cancer baseline, log it to MLflow, register it, set its alias."""
    serving = ServingSettings()
    name = model_name or serving.model_name
    store = ModelStore.from_settings()
    existing = store.alias_version(name, alias) if if_missing else None
    if existing is not None:
        console.print(f"{name}@{alias} is version {existing}: nothing to train", highlight=False)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("starting", total=None)

        def step(description: str) -> None:
            progress.update(task, description=description)

        result = train_and_register(store, name, alias=alias, progress=step)
        if fixtures:
            step("writing the drift fixtures")
            paths = DriftFixtureSettings()
            ref_rows, cur_rows = write_drift_fixtures(paths.reference_path, paths.current_path)
        progress.update(task, description="done", total=1, completed=1)
    table = Table(title=f"{name} version {result.version} -> @{alias}")
    table.add_column("validation metric")
    table.add_column("value")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(
        f"MLflow run {result.run_id} in {redact_url(store.tracking_uri)}", highlight=False
    )
    if fixtures:
        console.print(
            f"drift fixtures: {paths.reference_path} ({ref_rows} rows), "
            f"{paths.current_path} ({cur_rows} rows)",
            highlight=False,
        )
