"""Training stores each version's drift reference profile: in its MLflow run and on disk.

The file tree is the one the drift processor reads (stream.profiles.FileProfileSource),
so this test reads it back through that very class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import mlflow.artifacts
import pandas as pd
import pytest

from retrain.profiles import PROFILE_ARTIFACT
from retrain.training import TrainResult, ensure_champion, train_and_register
from schemas.breast_cancer import feature_names, load_split
from schemas.model_registry import ModelStore
from serving.settings import DEFAULT_MODEL_NAME as MODEL
from stream.profiles import FileProfileSource
from stream.stats import ReferenceProfile, detect

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Trained:
    store: ModelStore
    result: TrainResult
    data_dir: Path

    @property
    def profile_file(self) -> Path:
        return self.data_dir / "profiles" / MODEL / f"{self.result.version}.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The baseline trained once into a fresh embedded MLflow store."""
    data_dir = tmp_path_factory.mktemp("data")
    store = ModelStore.embedded(data_dir)
    return Trained(store, train_and_register(store, MODEL), data_dir.resolve())


def test_profile_is_logged_to_the_run_and_written_where_the_processor_reads(
    trained: Trained, tmp_path: Path
) -> None:
    trained.store.activate()
    local = mlflow.artifacts.download_artifacts(
        run_id=trained.result.run_id, artifact_path=PROFILE_ARTIFACT, dst_path=str(tmp_path)
    )
    from_run = ReferenceProfile.load(local)
    assert trained.profile_file.is_file()
    on_disk = FileProfileSource(trained.data_dir / "profiles").get(MODEL, trained.result.version)
    assert on_disk is not None
    assert on_disk.feature_names == list(feature_names()) and len(on_disk.feature_names) == 30
    assert on_disk.reference_id == from_run.reference_id
    assert on_disk.metadata["run_id"] == trained.result.run_id
    assert on_disk.metadata["model_version"] == trained.result.version


def test_training_rows_score_zero_and_the_shifted_fixture_is_flagged(trained: Trained) -> None:
    profile = ReferenceProfile.load(trained.profile_file)
    split = load_split()
    model = trained.store.load_version(MODEL, trained.result.version)
    same = detect(
        profile,
        split.x_train,
        split.features,
        predicted=model.predict(split.x_train),
        probability=model.predict_proba(split.x_train)[:, 1],
    )
    assert same.data.drift_score == 0.0 and not same.data.is_drift

    current = pd.read_csv(REPO / "data" / "sample" / "drift_current.csv")
    names = list(split.features)
    rows = current[names].to_numpy()
    shifted = detect(
        profile,
        rows,
        names,
        predicted=model.predict(rows),
        probability=model.predict_proba(rows)[:, 1],
    )
    assert shifted.data.is_drift and shifted.data.drift_score > 0, shifted.data.drift_score


def test_champion_without_a_profile_file_gets_it_from_its_run(trained: Trained) -> None:
    """A data dir from before profiles existed: the next serving start writes the file."""
    original = json.loads(trained.profile_file.read_text())
    trained.profile_file.unlink()
    assert ensure_champion(trained.store, MODEL) == trained.result.version
    assert json.loads(trained.profile_file.read_text()) == original


def test_champion_whose_run_has_no_profile_gets_it_rebuilt(trained: Trained) -> None:
    """No artifact either (trained by an older Driftline): rebuilt from model + split."""
    original = ReferenceProfile.load(trained.profile_file)
    run = trained.store.activate().get_run(trained.result.run_id)
    artifact_dir = Path(urlparse(run.info.artifact_uri).path)  # the embedded local store
    (artifact_dir / PROFILE_ARTIFACT).unlink()
    trained.profile_file.unlink()
    assert ensure_champion(trained.store, MODEL) == trained.result.version
    rebuilt = ReferenceProfile.load(trained.profile_file)
    assert rebuilt.reference_id == original.reference_id  # same data, model and bins


def test_store_without_data_dir_logs_the_profile_only(tmp_path: Path) -> None:
    """A tracking-server store built without a data dir writes no file, still logs it."""
    embedded = ModelStore.embedded(tmp_path / "mlflow")
    store = ModelStore(embedded.tracking_uri, embedded.artifact_root)
    assert store.profiles_dir is None
    result = train_and_register(store, "profile-only-model")
    names = [a.path for a in store.activate().list_artifacts(result.run_id)]
    assert PROFILE_ARTIFACT in names
    assert not (tmp_path / "mlflow" / "profiles").exists()
