"""Train the baseline ``breast-cancer-classifier`` and register it as the champion.

The estimator is ``StandardScaler`` + ``LogisticRegression`` (see docs/decisions.md): it
trains in milliseconds, answers one row in well under a millisecond, gives calibrated
probabilities, and scores about 0.97 accuracy on the fixed validation split, so the
request path is dominated by HTTP and publishing, not by the model.

Data comes from ``sklearn.datasets.load_breast_cancer`` (ships inside scikit-learn,
nothing is downloaded). The split is fixed and seeded: ``training`` (75 %) and
``validation`` (25 %, stratified), the same on every machine.

Every trained version gets its drift reference profile (``stream.stats``, the one
statistics library): the training rows with the model's predicted classes and
probabilities on them. It is logged to the run as ``reference_profile.json`` and written
to ``<data_dir>/profiles/<model>/<version>.json``, the tree the drift processor reads.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from serving.model_store import ModelStore
from serving.settings import DEFAULT_MODEL_NAME
from stream.stats import ProfileError, ReferenceProfile

log = logging.getLogger(__name__)

#: Seed of the training/validation split and of the drift fixture's noise.
SPLIT_SEED: Final = 20261125
VALIDATION_FRACTION: Final = 0.25
TARGET: Final = "target"

#: The documented shift that turns held-out rows into ``drift_current.csv``: these size
#: features are multiplied by SIZE_FACTOR (tumours look 30 % larger), and
#: ``mean texture`` gets TEXTURE_SHIFT_SD of its own standard deviation added, plus
#: seeded Gaussian noise of NOISE_SD standard deviations on both.
SIZE_FEATURES: Final = (
    "mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area",
)  # fmt: skip
SIZE_FACTOR: Final = 1.3
TEXTURE_SHIFT_SD: Final = 1.0
NOISE_SD: Final = 0.05

#: Name of the reference profile artifact in each training run.
PROFILE_ARTIFACT: Final = "reference_profile.json"
#: Quantile bins per numeric feature of the reference profile (DRIFTLINE_DRIFT_BINS' default).
PROFILE_BINS: Final = 20

Progress = Callable[[str], None]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def feature_names() -> tuple[str, ...]:
    """The 30 feature names, in the order the model expects them."""
    return tuple(str(n) for n in load_breast_cancer().feature_names)


@dataclass(frozen=True)
class Split:
    """The fixed training/validation split of the breast-cancer data."""

    features: tuple[str, ...]
    x_train: FloatArray
    y_train: IntArray
    x_validation: FloatArray
    y_validation: IntArray


def load_split() -> Split:
    """The seeded, stratified 75/25 split; identical on every call and machine."""
    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.int64)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return Split(tuple(str(n) for n in data.feature_names), x_tr, y_tr, x_va, y_va)


def build_pipeline(parameters: Mapping[str, Any] | None = None) -> Pipeline:
    """Scaler + logistic regression; ``parameters`` go to the LogisticRegression."""
    params: dict[str, Any] = {"C": 1.0, "max_iter": 1000}
    params.update(parameters or {})
    return Pipeline([("scaler", StandardScaler()), ("classifier", LogisticRegression(**params))])


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    run_id: str
    model_name: str
    version: str
    metrics: dict[str, float]
    parameters: dict[str, Any] = field(default_factory=dict)


def evaluate(model: Pipeline, x: FloatArray, y: IntArray) -> dict[str, float]:
    """Accuracy, ROC AUC and F1 (positive class 1 = benign, as in the data set)."""
    proba = model.predict_proba(x)[:, 1]
    predicted = (proba >= 0.5).astype(np.int64)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "f1": float(f1_score(y, predicted)),
    }


def _pip_requirements() -> list[str]:
    """Exact versions of what loading the model needs; given so MLflow does not infer them.

    Inference imports every module of the model's environment and takes seconds; a list
    keeps logging and registering at about one second.
    """
    from importlib.metadata import version

    return [f"{dist}=={version(dist)}" for dist in ("scikit-learn", "numpy", "skops")]


def train_and_register(
    store: ModelStore,
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    alias: str = "champion",
    parameters: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit, evaluate on the validation split, log to MLflow, register, set ``alias``.

    The run also gets the version's drift reference profile (artifact
    ``reference_profile.json``), written as well to ``store.profiles_dir`` when the store
    has a data dir.

    :param progress: called with a short description before each step.
    """
    import mlflow
    import mlflow.sklearn

    say = progress or (lambda _step: None)
    say("loading the breast-cancer data and the fixed split")
    split = load_split()
    say("fitting scaler + logistic regression")
    pipeline = build_pipeline(parameters)
    started = time.perf_counter()
    pipeline.fit(split.x_train, split.y_train)
    fit_s = time.perf_counter() - started
    metrics = evaluate(pipeline, split.x_validation, split.y_validation)
    say("logging the run to MLflow")
    experiment_id = store.experiment_id()
    params = dict(pipeline.named_steps["classifier"].get_params())
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{model_name}-baseline") as run:
        mlflow.log_params(
            {"estimator": "StandardScaler+LogisticRegression", "split_seed": SPLIT_SEED}
            | {f"classifier.{k}": v for k, v in params.items()}
        )
        mlflow.log_metrics({f"validation_{k}": v for k, v in metrics.items()} | {"fit_s": fit_s})
        mlflow.set_tags({"driftline.dataset": "training", "driftline.features": "30"})
        say("registering the model")
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=model_name,
            pip_requirements=_pip_requirements(),
        )
        version = str(info.registered_model_version)
        say("building the drift reference profile")
        profile = build_reference_profile(
            pipeline, split, model_name, version, run_id=run.info.run_id
        )
        mlflow.log_text(profile.model_dump_json(indent=1), PROFILE_ARTIFACT)
    write_profile(store, model_name, version, profile)
    say(f"setting alias {alias!r} on version {version}")
    store.activate().set_registered_model_alias(model_name, alias, version)
    return TrainResult(run.info.run_id, model_name, version, metrics, params)


def ensure_champion(
    store: ModelStore,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = "champion",
    progress: Progress | None = None,
) -> str:
    """The champion's version, training and registering the baseline first if none exists.

    A champion trained before profiles were written gets its profile file now.
    """
    version = store.alias_version(model_name, alias)
    if version is None:
        return train_and_register(store, model_name, alias=alias, progress=progress).version
    ensure_profile(store, model_name, version)
    return version


def build_reference_profile(
    model: Pipeline,
    split: Split,
    model_name: str,
    version: str,
    *,
    run_id: str = "",
    bins: int = PROFILE_BINS,
) -> ReferenceProfile:
    """The drift reference of one version: its training rows, predictions and P(class 1).

    Not calibrated here: a bootstrap calibration (``stream.stats.calibrate``, 400 draws)
    measured 2-4 s on the breast-cancer data, more than training itself; the processor
    then uses the configured decision rule (docs/drift.md).
    """
    return ReferenceProfile.build(
        split.x_train,
        split.features,
        predicted=model.predict(split.x_train),
        probability=model.predict_proba(split.x_train)[:, 1],
        bins=bins,
        metadata={
            "model_name": model_name,
            "model_version": version,
            "run_id": run_id,
            "dataset": "training",
        },
    )


def profile_path(store: ModelStore, model_name: str, version: str) -> Path | None:
    """``<profiles_dir>/<model>/<version>.json`` (what FileProfileSource looks for first)."""
    root = store.profiles_dir
    return None if root is None else root / model_name / f"{version}.json"


def write_profile(
    store: ModelStore, model_name: str, version: str, profile: ReferenceProfile
) -> Path | None:
    """Write ``profile`` to :func:`profile_path` atomically (a reader never sees half)."""
    target = profile_path(store, model_name, version)
    if target is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{version}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        profile.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def ensure_profile(store: ModelStore, model_name: str, version: str) -> Path | None:
    """Make sure ``version``'s profile file exists: from its run's artifact, else rebuilt.

    Rebuilding loads the model and profiles the fixed training split, which is what the
    baseline is trained on.
    """
    target = profile_path(store, model_name, version)
    if target is None or target.is_file():
        return target
    profile = _profile_artifact(store, model_name, version)
    if profile is None:
        log.info("no %s in the run of %s/%s: rebuilding it", PROFILE_ARTIFACT, model_name, version)
        model = store.load_version(model_name, version)
        profile = build_reference_profile(model, load_split(), model_name, version)
    return write_profile(store, model_name, version, profile)


def _profile_artifact(store: ModelStore, model_name: str, version: str) -> ReferenceProfile | None:
    """The profile logged with the version's run, or None when it has none."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    run_id = store.run_id(model_name, version)
    if run_id is None:
        return None
    store.activate()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PROFILE_ARTIFACT, dst_path=tmp
            )
        except (MlflowException, OSError):
            return None
        try:
            return ReferenceProfile.load(local)
        except ProfileError as exc:
            log.warning(
                "%s of %s/%s unusable (%s): rebuilding it",
                PROFILE_ARTIFACT,
                model_name,
                version,
                exc,
            )
            return None


def drift_fixtures() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): the training rows, and held-out rows with the documented shift.

    Both carry the 30 features and ``target``. ``current`` is the validation split with
    SIZE_FEATURES scaled by SIZE_FACTOR and ``mean texture`` moved up by TEXTURE_SHIFT_SD
    standard deviations (of the training data), plus seeded noise: reproducible to the bit.
    """
    split = load_split()
    names = list(split.features)
    reference = pd.DataFrame(split.x_train, columns=names)
    reference[TARGET] = split.y_train
    current = pd.DataFrame(split.x_validation.copy(), columns=names)
    rng = np.random.default_rng(SPLIT_SEED)
    sd = reference[names].std(ddof=0)
    for name in SIZE_FEATURES:
        noise = rng.normal(0.0, NOISE_SD * sd[name], len(current))
        current[name] = current[name] * SIZE_FACTOR + noise
    texture = "mean texture"
    noise = rng.normal(0.0, NOISE_SD * sd[texture], len(current))
    current[texture] = current[texture] + TEXTURE_SHIFT_SD * sd[texture] + noise
    current[TARGET] = split.y_validation
    return reference, current


def write_drift_fixtures(reference_path: Path, current_path: Path) -> tuple[int, int]:
    """Write both fixture CSVs (6 significant digits); return their row counts."""
    reference, current = drift_fixtures()
    for frame, path in ((reference, reference_path), (current, current_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, float_format="%.6g")
    return len(reference), len(current)
