"""Named data jobs on named datasets, run in a bounded background executor.

``POST /pipelines/trigger`` starts one; ``GET /pipelines/{job_id}`` reads its progress.
Job state lives in this process's memory (the last ``keep`` jobs): jobs are short, their
effects (a registered dataset, a profile file, events on the topic, Redis hashes) are
durable on their own, and a restart loses only the progress records (documented in
``docs/features.md``). Types:

- ``data_processing``: check a dataset against the served model's feature schema (every
  feature a numeric column; rows with a missing value dropped and counted), profile it,
  and register the clean copy as dataset ``<dataset>-processed`` (a reference id).
- ``reference_rebuild``: profile the dataset as the served version's drift reference
  (``<data_dir>/profiles/<model>/<version>.json``, what the drift processor reads).
- ``replay``: predict every row with the served model and publish one InferenceEvent per
  row onto the inference topic (``source = driftline-pipeline-replay``).
- ``feature_backfill``: merge the rows into the feature views of the served model
  (column ``entity_id``, optional ``event_time`` in ms, else now) in Redis.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from schemas.breast_cancer import load_split
from schemas.feature_store import EntityState
from schemas.feature_views import FeatureView
from serving.datasets import BUILT_IN, DatasetStore, validate_id
from serving.exceptions import ClientInputError
from serving.publishing import inference_event
from serving.references import TARGET
from stream.stats import ReferenceProfile

log = logging.getLogger(__name__)

PIPELINE_TYPES = ("data_processing", "feature_backfill", "reference_rebuild", "replay")
JobStatus = Literal["queued", "running", "succeeded", "failed"]
REPLAY_SOURCE = "driftline-pipeline-replay"
REPLAY_CHUNK = 500


@dataclass
class Job:
    """One triggered pipeline and how far it got."""

    job_id: str
    pipeline_type: str
    dataset: str
    status: JobStatus = "queued"
    progress: float = 0.0
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "pipeline_type": self.pipeline_type,
            "dataset": self.dataset,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "result": self.result,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class JobFailedError(Exception):
    """A pipeline could not do its work; the message is the job's ``message``."""


Work = Callable[[Job], dict[str, Any]]


class PipelineRunner:
    """A bounded pool of job threads plus the last ``keep`` jobs' state.

    :param max_workers: jobs running at once.
    :param max_pending: queued and running jobs at once; beyond it a trigger gets 429.
    :param keep: finished jobs remembered (oldest forgotten first).
    """

    def __init__(self, max_workers: int = 2, max_pending: int = 16, keep: int = 200) -> None:
        self.max_pending = max_pending
        self.keep = keep
        self._executor: ThreadPoolExecutor | None = None
        self._max_workers = max_workers
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, pipeline_type: str, dataset: str, work: Work) -> Job:
        """Queue ``work``; 429 when ``max_pending`` jobs are already queued or running."""
        with self._lock:
            pending = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if pending >= self.max_pending:
                raise ClientInputError(
                    429, "too_many_jobs", f"{pending} jobs queued or running; retry later"
                )
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._max_workers, "pipeline")
            job = Job(str(uuid.uuid4()), pipeline_type, dataset)
            self._jobs[job.job_id] = job
            self._forget_old()
            self._executor.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.status in ("succeeded", "failed")]
        for key in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[key]

    @staticmethod
    def _run(job: Job, work: Work) -> None:
        job.status, job.started_at = "running", time.time()
        try:
            job.result = work(job)
            job.status, job.progress = "succeeded", 1.0
            job.message = job.message or "done"
        except (JobFailedError, ClientInputError) as exc:
            job.status, job.message = "failed", str(exc)
        except Exception as exc:  # a job never takes the server down; the log has the trace
            log.exception("pipeline %s (%s) failed", job.job_id, job.pipeline_type)
            job.status, job.message = "failed", f"internal error: {type(exc).__name__}"
        finally:
            job.finished_at = time.time()

    def stop(self) -> None:
        """Let running jobs finish; drop queued ones."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def dataset_frame(datasets: DatasetStore, dataset: str) -> pd.DataFrame | None:
    """The rows of a built-in or registered dataset (``target`` included); None: unknown."""
    if dataset in BUILT_IN:
        split = load_split()
        if dataset == "validation":
            x, y = split.x_validation, split.y_validation
        else:  # "training" and "reference" (what the champion was trained on)
            x, y = split.x_train, split.y_train
        frame = pd.DataFrame(x, columns=list(split.features))
        frame[TARGET] = y
        return frame
    loaded: pd.DataFrame | None = datasets.load(dataset)
    return loaded


def model_rows(frame: pd.DataFrame, features: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    """The model's feature columns of ``frame`` (and ``target``), complete rows only.

    :raises JobFailedError: a model feature is not a column (names every missing one).
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise JobFailedError(
            f"the dataset lacks {len(missing)} of the model's {len(features)} features: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
        )
    columns = [*features, *([TARGET] if TARGET in frame.columns else [])]
    chosen = frame[columns]
    complete = chosen.dropna(subset=list(features))
    if complete.empty:
        raise JobFailedError("no row has every model feature")
    return complete.reset_index(drop=True), len(chosen) - len(complete)


def profile_of(rows: pd.DataFrame, features: tuple[str, ...], dataset: str) -> ReferenceProfile:
    return ReferenceProfile.build(
        rows[list(features)].to_numpy(dtype=np.float64), list(features),
        metadata={"dataset": dataset},
    )  # fmt: skip


def write_profile(target: Path, profile: ReferenceProfile) -> None:
    """Replace ``target`` atomically (the drift processor never reads half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rebuild.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        profile.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def backfill_states(
    rows: pd.DataFrame, views: list[FeatureView], now_ms: int
) -> tuple[dict[tuple[str, str], EntityState], int]:
    """Per (view, entity) partials of the rows; returns them and the rows used.

    :raises JobFailedError: no ``entity_id`` column.
    """
    if "entity_id" not in rows.columns:
        raise JobFailedError("feature_backfill needs an 'entity_id' column")
    entities = rows["entity_id"]
    times = rows["event_time"] if "event_time" in rows.columns else None
    deltas: dict[tuple[str, str], EntityState] = {}
    used = 0
    records = rows.to_dict("records")
    for i, row in enumerate(records):
        raw = entities.iloc[i]
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            continue
        entity = str(int(raw)) if float(raw).is_integer() else str(raw)
        when = int(times.iloc[i]) if times is not None and not math.isnan(times.iloc[i]) else now_ms
        used += 1
        for view in views:
            values = {
                f: float(row[f])
                for f in view.fields
                if f in row and row[f] is not None and not math.isnan(row[f])
            }
            state = deltas.get((view.name, entity))
            if state is None:
                state = deltas[(view.name, entity)] = EntityState()
            state.add(view, when, values)
    return deltas, used


def processed_id(dataset: str) -> str:
    """The id the cleaned copy of ``dataset`` is registered under."""
    return validate_id(f"{dataset}-processed")


def replay_chunks(n: int) -> list[tuple[int, int]]:
    return [(s, min(s + REPLAY_CHUNK, n)) for s in range(0, n, REPLAY_CHUNK)]


def replay_event(
    request_id: str,
    model_name: str,
    model_version: str,
    features: dict[str, float],
    label: int,
    probabilities: dict[str, float],
) -> dict[str, Any]:
    """One replayed row as an InferenceEvent (source says where it came from)."""
    event = inference_event(
        request_id=request_id,
        model_name=model_name,
        model_version=model_version,
        variant="baseline",
        features=features,
        prediction=float(label),
        probabilities=probabilities,
        latency_ms=0.0,
        outcome="ok",
    )
    event["source"] = REPLAY_SOURCE
    return event
