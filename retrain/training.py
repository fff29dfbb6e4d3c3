"""Train a ``breast-cancer-classifier`` version, register it, and point an alias at it.

The estimator is ``StandardScaler`` + ``LogisticRegression`` (see docs/decisions.md): it
trains in milliseconds, answers one row in well under a millisecond, gives calibrated
probabilities, and scores about 0.97 accuracy on the fixed validation split, so the
request path is dominated by HTTP and publishing, not by the model.

The data is the fixed split of :mod:`schemas.breast_cancer`. Every trained version gets
its drift reference profile (:mod:`retrain.profiles`). Serving never trains: the
launcher (``driftline train``, ``driftline up`` on a fresh data dir) calls
:func:`ensure_champion`, and the retrain worker trains new candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from retrain.profiles import (
    PROFILE_ARTIFACT,
    build_reference_profile,
    ensure_profile,
    write_profile,
)
from schemas.breast_cancer import DEFAULT_MODEL_NAME, SPLIT_SEED, FloatArray, IntArray, load_split
from schemas.model_registry import ModelStore

Progress = Callable[[str], None]


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


#: Equal-width probability bins of the expected calibration error.
CALIBRATION_BINS = 10


def calibration_error(y: IntArray, proba: FloatArray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: per equal-width bin of P(class 1), the gap between mean
    predicted probability and observed frequency, weighted by the bin's share of rows."""
    if len(y) == 0:
        return float("nan")
    which = np.minimum((proba * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(float(proba[inside].mean()) - float(y[inside].mean()))
    return total


def evaluate(model: Any, x: FloatArray, y: IntArray) -> dict[str, float]:
    """Accuracy, ROC AUC, F1 (positive class 1 = benign, as in the data set) and expected
    calibration error. ROC AUC is NaN when ``y`` holds one class only."""
    proba = np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
    predicted = (proba >= 0.5).astype(np.int64)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, proba)) if both else float("nan"),
        "f1": float(f1_score(y, predicted, zero_division=0.0)),
        "calibration_error": calibration_error(y, proba),
    }


def pip_requirements() -> list[str]:
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
            pip_requirements=pip_requirements(),
        )
        version = str(info.registered_model_version)
        say("building the drift reference profile")
        profile = build_reference_profile(
            pipeline, split.x_train, split.features, model_name, version, run_id=run.info.run_id
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
