"""Backup and restore of what a Driftline stack cannot rebuild from Kafka.

Kafka is the system of record for events, windows and decisions; what lives beside it
is saved here:

- **MLflow**: with the embedded store (sqlite ``<data dir>/mlflow.db``, artifacts in
  ``<data dir>/mlruns``) the database, copied with sqlite's online backup API (a
  consistent copy while serving and the retrain worker run), and every artifact file.
  With a tracking *server* (``MLFLOW_TRACKING_URI=http...``) its database and artifact
  store are backed up with their own tools (``pg_dump``, object-store versioning);
  Driftline saves the registry's inventory (models, versions, run ids, aliases) so a
  restore can check the server has every version and put the aliases back.
  The inventory is saved in both cases.
- **Named datasets** (``<data dir>/datasets/*.csv``: the references of
  ``POST /drift/detect``) and the **drift reference profiles** the drift processor reads
  (``<data dir>/profiles``).
- **Rollout state** in Redis (``driftline:rollout:*``: champion, canary, shadow).

Not saved: retrain cooldowns and de-duplication keys (short-lived), processor
checkpoints and spools (rebuilt from Kafka), logs.

``manifest.json`` lists every file with its size and SHA-256, and the versions that wrote
it. A backup is written to a hidden sibling directory and renamed into place when
complete, so a directory with a manifest is a whole backup. A restore checks every file
against the manifest before it changes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from driftline import __version__
from driftline.exceptions import BackupError, CorruptBackupError, RestoreTargetNotEmptyError
from schemas.model_registry import ModelStore
from schemas.redaction import redact_url
from schemas.rollout_state import KEY_PREFIX, rollout_key
from serving.datasets import DatasetStore

FORMAT = "driftline-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MLFLOW_DB = "mlflow/mlflow.db"
MLFLOW_ARTIFACTS = "mlflow/mlruns"
REGISTRY = "mlflow/registry.json"
ROLLOUT = "redis/rollout.json"


class FileEntry(BaseModel):
    """One file of the backup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class MlflowPart(BaseModel):
    """Which kind of MLflow store was saved, and where its artifacts were."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["embedded", "server"]
    tracking_uri: str = Field(description="Password masked.")
    artifact_root: str | None = Field(
        default=None, description="file: URI of the embedded store's artifact dir."
    )
    mlflow_version: str
    schema_revision: str | None = Field(default=None, description="Alembic revision of the db.")


class Manifest(BaseModel):
    """``manifest.json``: what a backup holds and how to check it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["driftline-backup"]
    format_version: int = Field(ge=1)
    created_at: str
    driftline_version: str
    python_version: str
    mlflow: MlflowPart
    registered_models: int = Field(ge=0)
    model_versions: int = Field(ge=0)
    datasets: list[str]
    rollout_models: list[str]
    files: dict[str, FileEntry]


class RegisteredModel(BaseModel):
    """One registered model of the inventory."""

    name: str
    aliases: dict[str, str]
    versions: dict[str, str | None] = Field(description="version -> run id")


_REGISTRY_ADAPTER = TypeAdapter(list[RegisteredModel])


def create_backup(dest: Path, store: ModelStore, data_dir: Path, client: redis.Redis) -> Manifest:
    """Write a complete backup to ``dest`` (which must not exist or be empty).

    :raises BackupError: ``dest`` holds something, or the MLflow store is missing.
    """
    dest = dest.resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory: back up to a new one")
    partial = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        part = _save_mlflow(partial, store, data_dir)
        models = _inventory(store)
        _write_json(partial / REGISTRY, [m.model_dump() for m in models])
        datasets = _save_datasets(partial, data_dir)
        _copy_tree(data_dir / "profiles", partial / "profiles")
        rollout = _read_rollout(client)
        _write_json(partial / ROLLOUT, rollout)
        manifest = Manifest(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            driftline_version=__version__,
            python_version=platform.python_version(),
            mlflow=part,
            registered_models=len(models),
            model_versions=sum(len(m.versions) for m in models),
            datasets=datasets,
            rollout_models=sorted(rollout),
            files={rel: _entry(partial / rel) for rel in _files(partial)},
        )
        (partial / MANIFEST).write_text(manifest.model_dump_json(indent=1))
        if dest.exists():
            dest.rmdir()
        os.replace(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def verify_backup(src: Path) -> Manifest:
    """The manifest of ``src`` once every file matches it.

    :raises CorruptBackupError: naming the first problem: no or unreadable manifest, a
        file missing, changed (size or SHA-256) or not in the manifest.
    """
    path = src / MANIFEST
    if not src.is_dir():
        raise CorruptBackupError(f"{src} is not a directory")
    if not path.is_file():
        raise CorruptBackupError(
            f"{src} has no {MANIFEST}: not a Driftline backup, or one that did not finish"
        )
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CorruptBackupError(
            f"{path} is not a valid manifest: {where}: {first['msg']}"
        ) from None
    if manifest.format_version > FORMAT_VERSION:
        raise CorruptBackupError(
            f"{path} has format version {manifest.format_version}; this Driftline "
            f"({__version__}) reads up to {FORMAT_VERSION}"
        )
    present = set(_files(src)) - {MANIFEST}
    for rel, expected in sorted(manifest.files.items()):
        if rel not in present:
            raise CorruptBackupError(f"{src}: {rel} is listed in the manifest but missing")
        actual = _entry(src / rel)
        if actual.bytes != expected.bytes:
            raise CorruptBackupError(
                f"{src}: {rel} has {actual.bytes} bytes, the manifest says {expected.bytes}"
            )
        if actual.sha256 != expected.sha256:
            raise CorruptBackupError(
                f"{src}: {rel} has SHA-256 {actual.sha256[:16]}..., the manifest says "
                f"{expected.sha256[:16]}... (the file changed or is damaged)"
            )
    extra = sorted(present - set(manifest.files))
    if extra:
        raise CorruptBackupError(f"{src}: {extra[0]} is not in the manifest")
    for rel in (REGISTRY, ROLLOUT):
        if rel not in manifest.files:
            raise CorruptBackupError(f"{src}: the manifest lists no {rel}")
    return manifest


def target_state(store: ModelStore, data_dir: Path, client: redis.Redis) -> list[str]:
    """What the restore target already holds (empty: nothing a restore would replace).

    An MLflow server's registry is not counted: its database is restored with its own
    tools first, so it is expected to hold the models; only the aliases are put back.
    """
    found: list[str] = []
    embedded = _is_embedded(store, data_dir)
    if embedded and (data_dir / "mlflow.db").exists():
        found.append(f"an MLflow store {data_dir / 'mlflow.db'}")
    if embedded and _non_empty(data_dir / "mlruns"):
        found.append(f"MLflow artifacts in {data_dir / 'mlruns'}")
    datasets = DatasetStore.in_data_dir(data_dir).registered()
    if datasets:
        found.append(f"datasets {', '.join(datasets)} in {data_dir / 'datasets'}")
    if _non_empty(data_dir / "profiles"):
        found.append(f"drift profiles in {data_dir / 'profiles'}")
    models = sorted(_read_rollout(client))
    if models:
        found.append(f"rollout state of {', '.join(models)} in Redis")
    return found


def restore_backup(
    src: Path, store: ModelStore, data_dir: Path, client: redis.Redis, force: bool = False
) -> Manifest:
    """Put the backup in ``src`` back into this stack.

    Everything is checked first (manifest, checksums, store kinds, an empty target unless
    ``force``); only then is anything written.

    :raises CorruptBackupError: the backup fails its manifest.
    :raises RestoreTargetNotEmptyError: the target holds state and ``force`` is off.
    :raises BackupError: the backup's MLflow kind does not fit the configured store, or
        a server lacks versions the backup's aliases point at.
    """
    manifest = verify_backup(src)
    embedded = _is_embedded(store, data_dir)
    saved = manifest.mlflow.kind
    if saved == "embedded" and not embedded:
        raise BackupError(
            f"{src} holds an embedded MLflow store, but MLflow is configured as "
            f"{redact_url(store.tracking_uri)}: unset MLFLOW_TRACKING_URI to restore into "
            "the embedded store of DRIFTLINE_DATA_DIR"
        )
    if saved == "server" and embedded:
        raise BackupError(
            f"{src} holds only the registry inventory of the MLflow server "
            f"{manifest.mlflow.tracking_uri}: restore that server's database and artifacts "
            "with its own tools, then restore with MLFLOW_TRACKING_URI pointing at it"
        )
    models = _registry(src)
    if not embedded:
        _check_server_versions(store, models)
    if not force:
        found = target_state(store, data_dir, client)
        if found:
            raise RestoreTargetNotEmptyError(
                "the target is not empty: " + "; ".join(found) + " (--force replaces it)"
            )
    if embedded:
        _restore_embedded(src, manifest, data_dir, force)
    else:
        _set_aliases(store, models)
    _restore_files(src / "datasets", data_dir / "datasets", force)
    _restore_files(src / "profiles", data_dir / "profiles", force)
    _write_rollout(client, _read_json(src / ROLLOUT), force)
    return manifest


# --- MLflow ---------------------------------------------------------------------------


def _is_embedded(store: ModelStore, data_dir: Path) -> bool:
    return store.tracking_uri == ModelStore.embedded(data_dir).tracking_uri


def _save_mlflow(dest: Path, store: ModelStore, data_dir: Path) -> MlflowPart:
    import mlflow

    if not _is_embedded(store, data_dir):
        return MlflowPart(
            kind="server",
            tracking_uri=redact_url(store.tracking_uri),
            mlflow_version=mlflow.__version__,
        )
    root = data_dir.resolve()
    db = root / "mlflow.db"
    if not db.is_file():
        raise BackupError(f"no MLflow store at {db}: nothing to back up (`driftline train`)")
    (dest / MLFLOW_DB).parent.mkdir(parents=True)
    source = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(dest / MLFLOW_DB)
    try:
        with target:
            source.backup(target)
        revision = _schema_revision(target)
    finally:
        source.close()
        target.close()
    _copy_tree(root / "mlruns", dest / MLFLOW_ARTIFACTS)
    return MlflowPart(
        kind="embedded",
        tracking_uri=store.tracking_uri,
        artifact_root=(root / "mlruns").as_uri(),
        mlflow_version=mlflow.__version__,
        schema_revision=revision,
    )


def _schema_revision(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _inventory(store: ModelStore) -> list[RegisteredModel]:
    client = store.activate()
    models: list[RegisteredModel] = []
    for registered in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{registered.name}'")
        models.append(
            RegisteredModel(
                name=registered.name,
                aliases={str(k): str(v) for k, v in (registered.aliases or {}).items()},
                versions={str(v.version): v.run_id for v in versions},
            )
        )
    return sorted(models, key=lambda m: m.name)


def _registry(src: Path) -> list[RegisteredModel]:
    try:
        return _REGISTRY_ADAPTER.validate_python(_read_json(src / REGISTRY))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CorruptBackupError(f"{src / REGISTRY}: {where}: {first['msg']}") from None


def _restore_embedded(src: Path, manifest: Manifest, data_dir: Path, force: bool) -> None:
    """The sqlite store with its artifact paths moved to this data dir, then the artifacts."""
    root = data_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    if force:
        shutil.rmtree(root / "mlruns", ignore_errors=True)
    staged = root / ".mlflow.db.restoring"
    shutil.copyfile(src / MLFLOW_DB, staged)
    old_root = manifest.mlflow.artifact_root
    if old_root is None:
        raise CorruptBackupError(f"{src}: the manifest of an embedded store has no artifact_root")
    new_root = (root / "mlruns").as_uri()
    relocate_artifacts(staged, old_root, new_root)
    os.replace(staged, db)
    _copy_tree(src / MLFLOW_ARTIFACTS, root / "mlruns")


def relocate_artifacts(db_path: Path, old_root: str, new_root: str) -> int:
    """Point every artifact location in an MLflow sqlite db from ``old_root`` to ``new_root``.

    The embedded store records absolute ``file:`` URIs (experiments, runs, logged models,
    model versions), so a store restored into another data dir must be moved. Rather than
    name MLflow's columns (they change between versions), every text column of every
    table is rewritten where its value starts with the old root (as a URI or a plain
    path). Returns the number of values changed.
    """
    old_path, new_path = _uri_path(old_root), _uri_path(new_root)
    changed = 0
    with sqlite3.connect(db_path) as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                name, declared = column[1], str(column[2]).upper()
                if declared and not any(t in declared for t in ("CHAR", "TEXT", "CLOB")):
                    continue
                for old, new in ((old_root, new_root), (old_path, new_path)):
                    cursor = db.execute(
                        f'UPDATE "{table}" SET "{name}" = ? || substr("{name}", ?) '  # noqa: S608
                        f'WHERE substr("{name}", 1, ?) = ?',
                        (new, len(old) + 1, len(old), old),
                    )
                    changed += cursor.rowcount
    return changed


def _uri_path(uri: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(uri).path)


def _check_server_versions(store: ModelStore, models: list[RegisteredModel]) -> None:
    missing = [
        f"{m.name} version {version} (@{alias})"
        for m in models
        for alias, version in sorted(m.aliases.items())
        if not store.version_exists(m.name, version)
    ]
    if missing:
        raise BackupError(
            f"the MLflow server {redact_url(store.tracking_uri)} lacks versions the backup's "
            f"aliases point at: {', '.join(missing)}; restore its database first"
        )


def _set_aliases(store: ModelStore, models: list[RegisteredModel]) -> None:
    for model in models:
        for alias, version in sorted(model.aliases.items()):
            store.set_alias(model.name, alias, version)


# --- datasets, profiles, rollout state ----------------------------------------------


def _save_datasets(dest: Path, data_dir: Path) -> list[str]:
    datasets = DatasetStore.in_data_dir(data_dir)
    ids = datasets.registered()
    for dataset_id in ids:
        target = dest / "datasets" / f"{dataset_id}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(datasets.path(dataset_id), target)
    return ids


def _restore_files(src: Path, dest: Path, force: bool) -> None:
    if force:
        shutil.rmtree(dest, ignore_errors=True)
    _copy_tree(src, dest)


def _read_rollout(client: redis.Redis) -> dict[str, dict[str, str]]:
    state: dict[str, dict[str, str]] = {}
    for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
        name = _text(key).removeprefix(KEY_PREFIX)
        fields = client.hgetall(key)
        state[name] = {_text(k): _text(v) for k, v in fields.items()}
    return state


def _write_rollout(client: redis.Redis, state: object, force: bool) -> None:
    if not isinstance(state, dict):
        raise CorruptBackupError(f"{ROLLOUT} must hold an object of model: fields")
    pipe = client.pipeline(transaction=True)
    if force:
        for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            pipe.delete(key)
    for model, fields in sorted(state.items()):
        if fields:
            pipe.hset(rollout_key(model), mapping=fields)
    pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --- files ----------------------------------------------------------------------------


def _files(root: Path) -> Iterator[str]:
    """Every file under ``root``, as a POSIX path relative to it."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix()


def _entry(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return FileEntry(sha256=digest.hexdigest(), bytes=size)


def _copy_tree(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)


def _non_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True))


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptBackupError(f"{path} cannot be read as JSON: {exc}") from None
