"""The training set of a retrain: the reference training data plus recent labelled traffic.

- **Reference**: the fixed training split of :mod:`schemas.breast_cancer` (what the
  baseline was trained on), always included, so a quiet hour never shrinks the data.
- **Recent**: InferenceEvents of the model from the window ``[requested_at - window_s,
  requested_at]`` joined by request id with their FeedbackEvents (:mod:`retrain.traffic`).
  Each recent row goes to training or to the *recent hold-out* by a hash of its request
  id (``recent_holdout_fraction``), so the split never depends on reading order.
- **Held-out**: the fixed validation split; candidate and champion are scored on it and
  on the recent hold-out.

:func:`build_training_set` reads Kafka live and records the exact offset ranges;
:func:`replay_training_set` reads exactly those ranges again. Both assemble through the
same pure function, so a replay is identical (``fingerprint`` proves it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from confluent_kafka import Consumer

from retrain.lineage import TrainingSetLineage
from retrain.settings import RetrainSettings
from retrain.traffic import LabelledRows, RawRecord, join_labelled, read_ranges, read_window
from schemas.breast_cancer import SPLIT_SEED, FloatArray, IntArray, load_split
from schemas.codec import Codec
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS, INFERENCE_FEEDBACK

REFERENCE = f"schemas.breast_cancer training split (seed {SPLIT_SEED})"


@dataclass(frozen=True)
class TrainingSet:
    """What a candidate is fitted and scored on, with the lineage that rebuilds it."""

    lineage: TrainingSetLineage
    features: tuple[str, ...]
    x_train: FloatArray
    y_train: IntArray
    x_holdout: FloatArray
    y_holdout: IntArray
    x_recent: FloatArray
    y_recent: IntArray
    recent_train_ids: tuple[str, ...]
    recent_holdout_ids: tuple[str, ...]
    skipped_undecodable: int

    @property
    def recent_rows(self) -> int:
        return len(self.recent_train_ids) + len(self.recent_holdout_ids)

    def fingerprint(self) -> str:
        """SHA-256 over every array and id list: equal fingerprints, identical sets."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_holdout, self.y_holdout):
            digest.update(np.ascontiguousarray(array).tobytes())
        for array in (self.x_recent, self.y_recent):
            digest.update(np.ascontiguousarray(array).tobytes())
        for ids in (self.recent_train_ids, self.recent_holdout_ids):
            digest.update("\n".join(ids).encode())
        return digest.hexdigest()


def in_recent_holdout(request_id: str, fraction: float) -> bool:
    """Whether a recent row is held out: a hash of its request id, not reading order."""
    point = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big")
    return point / 2**64 < fraction


def assemble(
    lineage: TrainingSetLineage,
    inference: Sequence[RawRecord],
    feedback: Sequence[RawRecord],
    codec: Codec,
) -> TrainingSet:
    """The training set of ``lineage`` from the records its ranges hold (pure)."""
    split = load_split()
    rows: LabelledRows = join_labelled(
        inference,
        feedback,
        codec,
        model_name=lineage.model_name,
        features=split.features,
        window_start_ms=lineage.window_start_ms,
        window_end_ms=lineage.window_end_ms,
        max_rows=lineage.max_recent_rows,
    )
    held = np.array(
        [in_recent_holdout(r, lineage.recent_holdout_fraction) for r in rows.request_ids],
        dtype=bool,
    )
    ids = np.array(rows.request_ids, dtype=object)
    return TrainingSet(
        lineage=lineage,
        features=split.features,
        x_train=np.vstack([split.x_train, rows.x[~held]]),
        y_train=np.concatenate([split.y_train, rows.y[~held]]),
        x_holdout=split.x_validation,
        y_holdout=split.y_validation,
        x_recent=rows.x[held],
        y_recent=rows.y[held],
        recent_train_ids=tuple(str(i) for i in ids[~held]),
        recent_holdout_ids=tuple(str(i) for i in ids[held]),
        skipped_undecodable=rows.skipped_undecodable,
    )


def _reader(kafka: KafkaSettings, settings: RetrainSettings) -> Consumer:
    """An assign-only consumer (it never commits) that reports partition ends.

    ``fetch.wait.max.ms=10``: with librdkafka's 500 ms default, the broker holds each fetch
    of an empty partition that long before answering, which made reading the window take
    about a second per topic (measured); the reader wants partition ends, not batching.
    """
    extra: dict[str, str | int | float | bool] = {
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 10,
    }
    return Consumer(consumer_config(kafka, f"{settings.group_id}-reader", **extra))


def build_training_set(
    kafka: KafkaSettings,
    settings: RetrainSettings,
    request: Mapping[str, Any],
    codec: Codec,
) -> TrainingSet:
    """Read the request's window of traffic live; record exactly what was read."""
    model_name = str(request["model_name"])
    window_end = int(request["requested_at"])
    window_start = window_end - int(settings.window_s * 1000)
    inference: list[RawRecord] = []
    feedback: list[RawRecord] = []
    lineage_ranges: dict[str, Any] = {"inference": [], "feedback": []}
    if settings.window_s > 0 and settings.max_recent_rows > 0:
        consumer = _reader(kafka, settings)
        try:
            for name, spec, sink in (
                ("inference", INFERENCE_EVENTS, inference),
                ("feedback", INFERENCE_FEEDBACK, feedback),
            ):
                records, ranges = read_window(
                    consumer,
                    spec.prefixed(kafka.topic_prefix).name,
                    spec.partitions,
                    window_start,
                    settings.read_idle_s,
                )
                sink.extend(records)
                lineage_ranges[name] = ranges
        finally:
            consumer.close()
    evidence = request.get("evidence") or {}
    trigger_evidence = {str(k): str(v) for k, v in (evidence.get("details") or {}).items()}
    for key in ("window_start", "window_end"):
        if evidence.get(key) is not None:
            trigger_evidence[f"drift_{key}"] = str(evidence[key])
    lineage = TrainingSetLineage(
        model_name=model_name,
        reference=REFERENCE,
        window_start_ms=window_start,
        window_end_ms=window_end,
        inference=lineage_ranges["inference"],
        feedback=lineage_ranges["feedback"],
        max_recent_rows=settings.max_recent_rows,
        recent_holdout_fraction=settings.recent_holdout_fraction,
        trigger_evidence=trigger_evidence,
    )
    return assemble(lineage, inference, feedback, codec)


def replay_training_set(
    kafka: KafkaSettings,
    settings: RetrainSettings,
    lineage: TrainingSetLineage,
    codec: Codec,
) -> TrainingSet:
    """Rebuild the training set of ``lineage`` from exactly its offset ranges.

    :raises ReplayError: a range is no longer readable (retention deleted it).
    """
    consumer = _reader(kafka, settings)
    try:
        inference = read_ranges(consumer, lineage.inference)
        feedback = read_ranges(consumer, lineage.feedback)
    finally:
        consumer.close()
    return assemble(lineage, inference, feedback, codec)
