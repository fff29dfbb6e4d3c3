"""Handle one RetrainRequest: lock, de-dup, cooldown, then train (or record why not).

The order matters (docs/retrain.md): the model's lock is taken first, so the de-dup and
cooldown decisions of two workers can never interleave; the outcome is recorded (de-dup
key, run tags) before the caller commits the request's offset, so a worker that dies
at any point leaves the request to be retried, and the retry resumes the same run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import redis
from confluent_kafka import KafkaException

from retrain import metrics as m
from retrain.coordination import Admission, ModelLock
from retrain.job import RetrainJob, RetrainOutcome
from retrain.settings import RetrainSettings
from retrain.training import Progress
from schemas.exceptions import DriftlineError
from schemas.model_registry import ModelStore
from schemas.retrain_requests import finish_run, open_retrain_run

log = logging.getLogger(__name__)


class RetrainHandler:
    """Admission control in front of a :class:`~retrain.job.RetrainJob`."""

    def __init__(
        self,
        settings: RetrainSettings,
        client: redis.Redis,
        store: ModelStore,
        job: RetrainJob,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.job = job
        self.admission = Admission(client, settings.cooldown_s, settings.dedup_ttl_s)

    def handle(
        self, request: Mapping[str, Any], progress: Progress | None = None
    ) -> RetrainOutcome:
        """Decide and act on ``request``; return its outcome.

        :raises LockBusyError: another worker trains this model (retry later).
        :raises LockLostError: the lock was lost mid-way (retry later).
        :raises redis.RedisError, mlflow.exceptions.MlflowException, DeliveryError: a
            dependency is away; nothing was recorded (retry later).
        """
        model_name = str(request["model_name"])
        key = str(request["idempotency_key"])
        urgent = request.get("urgency") == "high"
        lock = ModelLock(self.client, model_name, self.settings.lock_ttl_s)
        lock.acquire(self.settings.lock_wait_s)
        with lock:
            done = self.admission.outcome_of(key)
            if done is not None:
                log.info("request %s was handled already (%s): skipped", key, done)
                return RetrainOutcome("duplicate", request.get("mlflow_run_id"), detail=done)
            missing = self._missing_run(request)
            if missing is not None:
                self.admission.record(key, f"failed:{missing.run_id}:None")
                return missing
            if not self.admission.start_cooldown(model_name, key, urgent):
                return self._suppress(request, key)
            run_id = request.get("mlflow_run_id") or self.admission.remembered_run(key)
            if run_id is None:
                run_id = open_retrain_run(
                    self.store, model_name, request["trigger"], key, urgent=urgent,
                    reason=(request.get("evidence") or {}).get("details", {}).get("reason"),
                )  # fmt: skip
            self.admission.remember_run(key, str(run_id))
            outcome = self._train(request, str(run_id), lock, progress)
            self.admission.record(key, f"{outcome.status}:{outcome.run_id}:{outcome.version}")
            return outcome

    def _missing_run(self, request: Mapping[str, Any]) -> RetrainOutcome | None:
        """``failed`` when the request names an MLflow run that does not exist (an outside
        producer, a deleted run): no retry can fix that, and retrying would block every
        later request of the partition. An MLflow that is away still raises (retry)."""
        from mlflow.exceptions import MlflowException

        run_id = request.get("mlflow_run_id")
        if not run_id:
            return None
        try:
            run = self.store.activate().get_run(str(run_id))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            detail = f"failed: the request names MLflow run {run_id!r}, which does not exist"
            log.warning("request %s: %s", request["idempotency_key"], detail)
            return RetrainOutcome("failed", str(run_id), detail=detail)
        if run.info.lifecycle_stage == "deleted":  # MLflow refuses every write to it
            detail = f"failed: the request names MLflow run {run_id!r}, which was deleted"
            log.warning("request %s: %s", request["idempotency_key"], detail)
            return RetrainOutcome("failed", str(run_id), detail=detail)
        return None

    def _train(
        self, request: Mapping[str, Any], run_id: str, lock: ModelLock, progress: Progress | None
    ) -> RetrainOutcome:
        """Run the job; an error no retry can fix (not a dependency being away) is recorded
        as the run's outcome (``failed``) instead of being retried for ever."""
        from mlflow.exceptions import MlflowException

        started = time.perf_counter()
        try:
            outcome = self.job.run(request, run_id, lock, progress)
        except (DriftlineError, redis.RedisError, MlflowException, KafkaException, OSError):
            raise
        except Exception as exc:
            log.exception("retrain of run %s failed", run_id)
            detail = f"failed: {type(exc).__name__}: {exc}"
            finish_run(self.store, run_id, "failed", detail)
            self.admission.end_cooldown(str(request["model_name"]), str(request["idempotency_key"]))
            return RetrainOutcome("failed", run_id, detail=detail)
        elapsed = time.perf_counter() - started
        m.TRAINING_SECONDS.labels(str(request["model_name"])).observe(elapsed)
        return outcome

    def _suppress(self, request: Mapping[str, Any], key: str) -> RetrainOutcome:
        """Inside the cooldown and not urgent: record it (and close an API-opened run)."""
        model_name = str(request["model_name"])
        detail = (
            f"suppressed: {model_name} is in its retrain cooldown "
            f"({self.settings.cooldown_s:g} s); send it as urgent to bypass"
        )
        run_id = request.get("mlflow_run_id")
        if run_id:
            finish_run(self.store, str(run_id), "suppressed", detail)
        self.admission.record(key, "suppressed")
        return RetrainOutcome("suppressed", run_id, detail=detail)
