"""``driftline backup --to DIR`` and ``driftline restore DIR`` (see :mod:`driftline.backup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.markup import escape

from driftline.backup import Manifest, create_backup, restore_backup
from driftline.exceptions import BackupError
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings, RedisSettings


def backup(
    to: Annotated[
        Path,
        typer.Option(
            "--to", metavar="DIR", help="New (or empty) directory the backup is written to."
        ),
    ],
) -> None:
    """Back up MLflow, the named datasets, drift profiles and rollout state to DIR.

    A manifest records the versions that wrote it and every file's SHA-256.
    """
    console = Console(highlight=False, soft_wrap=True)
    client = _redis()
    try:
        manifest = create_backup(to, ModelStore.from_settings(), DataSettings().data_dir, client)
    except (BackupError, redis.RedisError) as exc:
        console.print(f"[red]backup failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        client.close()
    console.print(f"backed up to {escape(str(to))}: {_summary(manifest)}")


def restore(
    src: Annotated[
        Path, typer.Argument(metavar="DIR", help="A directory `driftline backup` wrote.")
    ],
    force: Annotated[
        bool, typer.Option(help="Replace what the target already holds (else refuse).")
    ] = False,
) -> None:
    """Restore a backup into the configured stack; refuses a corrupt one or a non-empty target.

    The stack is DRIFTLINE_DATA_DIR, MLFLOW_TRACKING_URI and DRIFTLINE_REDIS_URL. Stop
    serving and the workers first; start them after.
    """
    console = Console(highlight=False, soft_wrap=True)
    client = _redis()
    try:
        manifest = restore_backup(
            src, ModelStore.from_settings(), DataSettings().data_dir, client, force
        )
    except (BackupError, redis.RedisError) as exc:
        console.print(f"[red]not restored:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        client.close()
    console.print(
        f"restored {escape(str(src))} (made {manifest.created_at} by Driftline "
        f"{manifest.driftline_version}): {_summary(manifest)}"
    )


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        RedisSettings().url.get_secret_value(), socket_timeout=5, socket_connect_timeout=5
    )


def _summary(manifest: Manifest) -> str:
    size = sum(entry.bytes for entry in manifest.files.values())
    return (
        f"MLflow {manifest.mlflow.kind} store ({manifest.registered_models} registered models, "
        f"{manifest.model_versions} versions), {len(manifest.datasets)} datasets, rollout "
        f"state of {len(manifest.rollout_models)} models; {len(manifest.files)} files, "
        f"{size / 1e6:.1f} MB"
    )
