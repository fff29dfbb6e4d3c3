"""MLflow as a library: where the tracking store is, and the versions in its registry.

A contract shared by serving (loads versions by alias), retrain (trains, registers, sets
aliases) and the launcher, so it lives in ``schemas`` (docs/decisions.md).

The embedded default is a sqlite tracking store and model registry at
``<DRIFTLINE_DATA_DIR>/mlflow.db`` with artifacts under ``<DRIFTLINE_DATA_DIR>/mlruns``;
``MLFLOW_TRACKING_URI`` points everything at an MLflow server instead. Only
``mlflow-skinny`` is needed for this; the UI is the optional ``ui`` extra.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# MLflow >= 3 sends usage telemetry by default; these machines have no network for it, and
# a service should not phone home unasked. An operator who wants it sets the variable.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from schemas.exceptions import ModelNotFoundError
from schemas.redaction import redact_url
from schemas.settings import DataSettings, MlflowSettings

#: The MLflow experiment every Driftline training run goes to.
EXPERIMENT_NAME = "driftline"


@dataclass(frozen=True)
class ModelStore:
    """An MLflow tracking store plus registry, and where new experiments keep artifacts.

    :param tracking_uri: MLflow URI (``sqlite:///...`` or ``http://...``).
    :param artifact_root: artifact location of experiments this store creates; None lets
        the server decide.
    :param data_dir: the local data dir (``DRIFTLINE_DATA_DIR``) next to the store: where
        training also writes each version's drift reference profile, for the drift
        processor to read without MLflow. None: profiles only go to MLflow.
    """

    tracking_uri: str
    artifact_root: str | None = None
    data_dir: Path | None = None

    @classmethod
    def from_settings(
        cls, data: DataSettings | None = None, mlflow_settings: MlflowSettings | None = None
    ) -> ModelStore:
        """``MLFLOW_TRACKING_URI`` if set, else the embedded sqlite store under the data dir."""
        mlflow_settings = mlflow_settings or MlflowSettings()
        data_dir = (data or DataSettings()).data_dir
        if mlflow_settings.tracking_uri:
            return cls(mlflow_settings.tracking_uri, data_dir=data_dir.resolve())
        return cls.embedded(data_dir)

    @classmethod
    def embedded(cls, data_dir: Path) -> ModelStore:
        """The sqlite store ``data_dir/mlflow.db`` with artifacts in ``data_dir/mlruns``."""
        root = data_dir.resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{root / 'mlflow.db'}", (root / "mlruns").as_uri(), root)

    @property
    def profiles_dir(self) -> Path | None:
        """``<data_dir>/profiles``: the ``<model>/<version>.json`` tree the drift processor
        reads (``DRIFTLINE_DRIFT_REFERENCE_PATH``); None without a data dir."""
        return None if self.data_dir is None else self.data_dir / "profiles"

    def run_id(self, model_name: str, version: str) -> str | None:
        """The MLflow run that produced ``version`` of ``model_name`` (None: unknown)."""
        client = self.activate()
        try:
            run_id = client.get_model_version(model_name, version).run_id
        except MlflowException:
            return None
        return str(run_id) if run_id else None

    def activate(self) -> MlflowClient:
        """Point the process-wide MLflow fluent API at this store; return a client on it."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(self.tracking_uri, self.tracking_uri)

    def experiment_id(self) -> str:
        """Id of the ``driftline`` experiment, created (with our artifact root) if missing."""
        client = self.activate()
        found = client.get_experiment_by_name(EXPERIMENT_NAME)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(EXPERIMENT_NAME, artifact_location=self.artifact_root))

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version number behind ``model_name@alias``, or None when there is none."""
        client = self.activate()
        try:
            return str(client.get_model_version_by_alias(model_name, alias).version)
        except MlflowException:
            return None

    def load(self, model_name: str, alias: str) -> tuple[Any, str]:
        """Load ``models:/model_name@alias`` with the sklearn flavour; return (model, version).

        :raises ModelNotFoundError: no such registered model or alias.
        """
        version = self.alias_version(model_name, alias)
        if version is None:
            where = redact_url(self.tracking_uri)
            raise ModelNotFoundError(
                f"no version of {model_name!r} has alias {alias!r} in {where} "
                "(`driftline train` trains and registers the baseline)"
            )
        import mlflow.sklearn

        self.activate()
        return mlflow.sklearn.load_model(f"models:/{model_name}/{version}"), version

    def load_version(self, model_name: str, version: str) -> Any:
        """Load ``models:/model_name/version`` with the sklearn flavour.

        :raises ModelNotFoundError: no such version.
        """
        if not self.version_exists(model_name, version):
            raise ModelNotFoundError(f"{model_name!r} has no version {version!r}")
        import mlflow.sklearn

        self.activate()
        return mlflow.sklearn.load_model(f"models:/{model_name}/{version}")

    def version_exists(self, model_name: str, version: str) -> bool:
        """Whether the registry holds ``version`` of ``model_name``."""
        client = self.activate()
        try:
            client.get_model_version(model_name, version)
        except MlflowException:
            return False
        return True

    def registered_models(self) -> list[str]:
        """Names of every registered model in the store."""
        client = self.activate()
        return sorted(m.name for m in client.search_registered_models())

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        """Point ``model_name@alias`` at ``version`` (moved if it pointed elsewhere).

        :raises ModelNotFoundError: no such version.
        """
        if not self.version_exists(model_name, version):
            raise ModelNotFoundError(f"{model_name!r} has no version {version!r}")
        self.activate().set_registered_model_alias(model_name, alias, version)

    def versions(self, model_name: str) -> list[str]:
        """Every registered version of ``model_name``, oldest first ([] for an unknown model)."""
        client = self.activate()
        found = client.search_model_versions(f"name = '{_quoted(model_name)}'")
        return [str(v) for v in sorted(int(mv.version) for mv in found)]

    def require_model(self, model_name: str) -> None:
        """Refuse a model the registry does not hold, naming the ones it does.

        The operator's commands (deploy, rollback, retrain, canary watch) call this first:
        a typo must fail loudly, not create a rollout state or a new registered model.

        :raises ModelNotFoundError: no such registered model.
        """
        try:
            self.activate().get_registered_model(model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            known = ", ".join(self.registered_models()) or "none"
            raise ModelNotFoundError(
                f"unknown model {model_name!r}: the registry at {redact_url(self.tracking_uri)} "
                f"holds {known}"
            ) from None

    def resolve_version(self, model_name: str, version: str) -> str:
        """``latest`` (the highest registered version) or a version number that exists.

        :raises ModelNotFoundError: unknown model, no versions, or no such version.
        """
        self.require_model(model_name)
        known = self.versions(model_name)
        if not known:
            raise ModelNotFoundError(f"{model_name!r} has no registered versions")
        if version == "latest":
            return known[-1]
        if version not in known:
            raise ModelNotFoundError(
                f"{model_name!r} has no version {version!r} (registered: {', '.join(known)})"
            )
        return version


def _quoted(name: str) -> str:
    """``name`` inside MLflow's single-quoted filter strings."""
    return name.replace("'", "\\'")
