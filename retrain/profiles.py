"""Drift reference profiles of trained versions: built, logged, and written for the processor.

Every trained version gets its drift reference profile (``stream.stats``, the one
statistics library): its training rows with the model's predicted classes and
probabilities on them. It is logged to the run as ``reference_profile.json`` and written
to ``<data_dir>/profiles/<model>/<version>.json``, the tree the drift processor reads.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from schemas.breast_cancer import FloatArray, load_split
from schemas.model_registry import ModelStore
from stream.stats import ProfileError, ReferenceProfile

log = logging.getLogger(__name__)

#: Name of the reference profile artifact in each training run.
PROFILE_ARTIFACT: Final = "reference_profile.json"
#: Quantile bins per numeric feature of the reference profile (DRIFTLINE_DRIFT_BINS' default).
PROFILE_BINS: Final = 20


def build_reference_profile(
    model: Any,
    x_train: FloatArray,
    features: Sequence[str],
    model_name: str,
    version: str,
    *,
    run_id: str = "",
    dataset: str = "training",
    bins: int = PROFILE_BINS,
) -> ReferenceProfile:
    """The drift reference of one version: its training rows, predictions and P(class 1).

    Not calibrated here: a bootstrap calibration (``stream.stats.calibrate``, 400 draws)
    measured 2-4 s on the breast-cancer data, more than training itself; the processor
    then uses the configured decision rule (docs/drift.md).
    """
    return ReferenceProfile.build(
        x_train,
        list(features),
        predicted=model.predict(x_train),
        probability=model.predict_proba(x_train)[:, 1],
        bins=bins,
        metadata={
            "model_name": model_name,
            "model_version": version,
            "run_id": run_id,
            "dataset": dataset,
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
        split = load_split()
        profile = build_reference_profile(model, split.x_train, split.features, model_name, version)
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
