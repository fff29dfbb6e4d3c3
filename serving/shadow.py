"""The shadow variant: a copy of the served traffic, predicted off the request path.

``/predict`` hands each answered request's rows to :meth:`ShadowRunner.submit`, which is
a non-blocking put on a bounded queue; a worker thread predicts them with the shadow
model and publishes one InferenceEvent per row with ``variant=shadow`` (same request id
as the served event). Shadow predictions are never returned to the caller. When the
queue is full the rows are dropped and counted (``serving_app_shadow_dropped_total``):
the shadow must never slow ``/predict`` down, and losing some shadow rows only thins
the comparison.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serving.predictor import LoadedModel
from serving.publishing import inference_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowRow:
    """One answered row to predict again with the shadow."""

    request_id: str
    entity_id: str | None
    values: list[float]


@dataclass(frozen=True)
class ShadowJob:
    """One request's rows and the shadow model current when it was answered."""

    model: LoadedModel
    rows: list[ShadowRow]


class ShadowRunner:
    """A bounded queue and one worker thread publishing shadow InferenceEvents.

    :param emit: hands an event to the publisher (never blocks).
    :param on_dropped: called with a row count when rows are dropped (queue full or
        shutdown).
    :param on_predicted: called with a row count after shadow rows were predicted.
    :param max_jobs: queue bound, in requests.
    """

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        on_dropped: Callable[[int], None],
        on_predicted: Callable[[int], None],
        max_jobs: int = 1000,
    ) -> None:
        self._emit = emit
        self._on_dropped = on_dropped
        self._on_predicted = on_predicted
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=max_jobs)
        self._thread = threading.Thread(target=self._run, name="serving-shadow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Queue ``job`` without waiting; False (rows dropped and counted) when full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._on_dropped(len(job.rows))
            return False
        return True

    def pending(self) -> int:
        """Jobs waiting (approximate)."""
        return self._queue.qsize()

    def run_one(self, job: ShadowJob) -> None:
        """Predict ``job``'s rows with its shadow model and publish one event per row."""
        started = time.perf_counter()
        model = job.model
        try:
            answers = model.predict([row.values for row in job.rows])
        except Exception:  # a broken shadow must not take serving down
            log.exception("shadow version %s failed to predict", model.version)
            self._on_dropped(len(job.rows))
            return
        latency_ms = (time.perf_counter() - started) * 1000.0
        for row, answer in zip(job.rows, answers, strict=True):
            self._emit(
                inference_event(
                    request_id=row.request_id,
                    model_name=model.name,
                    model_version=model.version,
                    variant="shadow",
                    features=dict(zip(model.features, row.values, strict=True)),
                    prediction=float(answer.label),
                    probabilities=answer.probabilities,
                    latency_ms=latency_ms,
                    outcome="ok",
                    entity_id=row.entity_id,
                )
            )
        self._on_predicted(len(job.rows))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self.run_one(job)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Drop what is still queued (counted), let the running job finish, stop."""
        dropped = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                dropped += len(job.rows)
        if dropped:
            self._on_dropped(dropped)
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:  # refilled meanwhile; the daemon thread dies with the process
                return
            self._thread.join(timeout_s)
