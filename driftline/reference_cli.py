"""``driftline reference``: register named datasets from CSV or JSON files, list them.

It writes the same ``<DRIFTLINE_DATA_DIR>/datasets/<id>.csv`` files as
``POST /references``, so a dataset added here is a ``reference_data_id`` of every
serving replica on that data dir at once, without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from schemas.settings import DataSettings
from serving.datasets import DatasetStore, parse_file, validate_id
from serving.exceptions import ClientInputError
from serving.settings import ServingSettings

reference_app = typer.Typer(help="Named datasets (drift references).", no_args_is_help=True)


@reference_app.command("add")
def add(
    dataset_id: Annotated[str, typer.Argument(metavar="ID", help="Id: [A-Za-z0-9._-], 1-64.")],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, help="CSV, or .json rows / {rows}."
        ),
    ],
    replace: Annotated[bool, typer.Option(help="Replace a dataset with this id.")] = False,
) -> None:
    """Register FILE under ID; ``POST /drift/detect`` accepts it as ``reference_data_id``."""
    console = Console()
    settings = ServingSettings()
    try:
        validate_id(dataset_id)
        frame = parse_file(file, settings.dataset_max_bytes, settings.dataset_max_rows)
        path = DatasetStore.in_data_dir(DataSettings().data_dir).save(dataset_id, frame, replace)
    except ClientInputError as exc:
        where = f" (at {exc.location})" if exc.location else ""
        console.print(f"[red]not registered:[/] {exc.message}{where}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"registered {dataset_id}: {len(frame)} rows, {len(frame.columns)} columns -> {path}",
        highlight=False,
    )


@reference_app.command("list")
def list_ids() -> None:
    """Every known dataset id (built-ins first)."""
    for dataset_id in DatasetStore.in_data_dir(DataSettings().data_dir).ids():
        typer.echo(dataset_id)
