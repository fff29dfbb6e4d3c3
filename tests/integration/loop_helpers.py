"""Helpers of the retrain-loop end-to-end tests: the real loops in threads, traffic, models.

Every process of the loop runs here as the CLI would start it (``build_*_loop`` and the
worker/controller classes), in threads of the test process, on the embedded broker, a
real redis-server, a real Alertmanager and a sqlite MLflow store.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from schemas.breast_cancer import load_split
from schemas.codec import SingleObjectCodec
from schemas.kafka_config import consumer_config
from schemas.model_registry import ModelStore
from schemas.sdk import DriftlineProducer
from schemas.settings import KafkaSettings

MINUTE_MS = 60_000


class Loop(Protocol):
    def run(self) -> Any: ...

    def stop(self) -> None: ...


class LoopThreads:
    """Loops running in daemon threads; any loop that raised is recorded by name."""

    def __init__(self, **loops: Loop) -> None:
        self.loops = loops
        self.errors: dict[str, BaseException] = {}
        self.threads = [
            threading.Thread(target=self._run, args=(name, loop), name=name, daemon=True)
            for name, loop in loops.items()
        ]

    def _run(self, name: str, loop: Loop) -> None:
        try:
            loop.run()
        except BaseException as exc:
            self.errors[name] = exc

    def failed(self) -> bool:
        return bool(self.errors)


@contextmanager
def running(**loops: Loop) -> Iterator[LoopThreads]:
    """Start every loop; on exit stop and join them one at a time (embedded-broker quirk)."""
    threads = LoopThreads(**loops)
    for thread in threads.threads:
        thread.start()
    try:
        yield threads
    finally:
        for loop, thread in zip(threads.loops.values(), threads.threads, strict=True):
            loop.stop()
            thread.join(30)


def malignant_heavy_rows(
    n: int, malignant_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of the training split, ``malignant_share`` of them malignant (class 0).

    The training data has about 37 % malignant rows: traffic that is mostly malignant is a
    prior shift that moves nearly every feature's distribution (drift), while the labels
    stay true, so a model retrained on it still passes the gate.
    """
    split = load_split()
    rng = np.random.default_rng(seed)
    malignant = np.flatnonzero(split.y_train == 0)
    benign = np.flatnonzero(split.y_train == 1)
    k = round(n * malignant_share)
    idx = np.concatenate([rng.choice(malignant, k), rng.choice(benign, n - k)])
    rng.shuffle(idx)
    return split.x_train[idx], split.y_train[idx]


#: Features whose distribution hardly differs between the classes: a prior shift alone
#: leaves them undrifted (drift_score about 0.83, at the 0.8 threshold).
CLASS_NEUTRAL_FEATURES = (
    "mean symmetry", "mean fractal dimension", "texture error", "smoothness error",
    "symmetry error", "fractal dimension error",
)  # fmt: skip


def drifted_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Malignant rows only (prior shift), their class-neutral features moved by one
    standard deviation (a changed sensor): every feature drifts, labels stay true."""
    x, y = malignant_heavy_rows(n, 1.0, seed)
    split = load_split()
    columns = [split.features.index(name) for name in CLASS_NEUTRAL_FEATURES]
    x = x.copy()
    x[:, columns] += split.x_train[:, columns].std(axis=0)
    return x, y


def send_labelled_rows(
    kafka: KafkaSettings,
    model_name: str,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    id_prefix: str,
    first_ms: int,
    step_ms: int,
) -> None:
    """Each row as an InferenceEvent at ``first_ms + i * step_ms`` plus its FeedbackEvent.

    Sent with the producer SDK, as an outside service would. Request ids are
    ``<id_prefix>-<i>``, so the retrain's recent hold-out (a hash of them) is fixed.
    """
    names = load_split().features
    with DriftlineProducer("loop-test", kafka) as producer:
        for i, (row, label) in enumerate(zip(x, labels, strict=True)):
            request_id = f"{id_prefix}-{i:05d}"
            producer.send_inference(
                model_name=model_name, model_version="1",
                features=dict(zip(names, row.tolist(), strict=True)), latency_ms=1.0,
                prediction=float(label), request_id=request_id,
                event_time_ms=first_ms + i * step_ms,
            )  # fmt: skip
            producer.send_feedback(request_id=request_id, model_name=model_name, label=float(label))
        assert producer.flush(30) == 0


def register_broken_version(store: ModelStore, model_name: str) -> str:
    """Register a version fitted on 29 of the 30 features: it loads, and fails every
    prediction serving asks of it (a candidate built against the wrong feature set)."""
    import mlflow
    import mlflow.sklearn

    from retrain.training import build_pipeline, pip_requirements

    split = load_split()
    pipeline = build_pipeline()
    pipeline.fit(split.x_train[:, :29], split.y_train)
    experiment_id = store.experiment_id()
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"broken-{uuid.uuid4().hex[:6]}"):
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=model_name,
            pip_requirements=pip_requirements(),
        )  # fmt: skip
    return str(info.registered_model_version)


def record_at(kafka: KafkaSettings, position: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The decoded record at ``topic[partition]@offset`` (a lineage reference)."""
    found = re.fullmatch(r"(.+)\[(\d+)\]@(\d+)", position)
    assert found is not None, position
    topic, partition, offset = found[1], int(found[2]), int(found[3])
    consumer = Consumer(consumer_config(kafka, f"lineage-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                assert msg.offset() == offset
                return dict(SingleObjectCodec().decode(msg.value() or b"").value)
    finally:
        consumer.close()
    raise AssertionError(f"no record at {position}")
