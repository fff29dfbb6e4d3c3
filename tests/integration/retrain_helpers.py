"""Helpers of the retrain integration tests: labelled traffic, a worker in a thread, records."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from schemas.breast_cancer import load_split
from schemas.codec import SingleObjectCodec
from schemas.sdk import DriftlineProducer
from schemas.settings import KafkaSettings
from schemas.topics import TopicSpec
from tests.integration.conftest import assigned_consumer, read_all


def send_labelled_traffic(
    kafka: KafkaSettings,
    model_name: str,
    rows: int,
    version: str = "1",
    flip: bool = False,
    id_prefix: str | None = None,
) -> list[str]:
    """``rows`` validation rows as InferenceEvents (now) plus their true labels as feedback.

    ``flip`` sends the opposite labels (traffic whose truth changed). ``id_prefix`` makes
    the request ids (and so the recent hold-out, a hash of them) the same on every run;
    by default they are random. Returns request ids.
    """
    prefix = id_prefix or f"req-{uuid.uuid4().hex[:8]}"
    split = load_split()
    ids: list[str] = []
    with DriftlineProducer("retrain-test", kafka) as producer:
        for i in range(rows):
            j = i % len(split.y_validation)
            request_id = f"{prefix}-{i:05d}"
            features = dict(zip(split.features, split.x_validation[j].tolist(), strict=True))
            producer.send_inference(
                model_name=model_name, model_version=version, features=features,
                latency_ms=1.0, prediction=float(split.y_validation[j]), request_id=request_id,
            )  # fmt: skip
            label = int(split.y_validation[j])
            producer.send_feedback(
                request_id=request_id, model_name=model_name,
                label=float(1 - label if flip else label),
            )  # fmt: skip
            ids.append(request_id)
        assert producer.flush(30) == 0
    return ids


def records_on(kafka: KafkaSettings, spec: TopicSpec, expected: int) -> list[dict[str, Any]]:
    """The decoded records of ``spec`` (this test's prefix), at least ``expected`` of them."""
    topic = spec.prefixed(kafka.topic_prefix).name
    consumer = assigned_consumer(kafka, topic, spec.partitions, f"t-{uuid.uuid4().hex[:8]}")
    try:
        messages = read_all(consumer, expected, timeout_s=30)
    finally:
        consumer.close()
    codec = SingleObjectCodec()
    return [codec.decode(m.value()).value for m in messages]  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    """Poll ``condition`` until true or the bound (only for a broken run) passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class WorkerThread:
    """A :class:`~retrain.worker.RetrainWorker` running in a thread."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="retrain-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(30)
