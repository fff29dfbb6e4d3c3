"""Replay traffic: rows from a file or a built-in scenario, through ``/predict`` or onto
the inference topic, paced, bounded, counted.

Sources and senders are separate, so every source goes through every sender: a
:class:`ReplayEvent` is one row of features (plus, optionally, its true label and a
prediction to publish as is). :class:`HttpSender` posts each to ``/predict`` with bounded
concurrency (httpx, asyncio); :class:`TopicSender` publishes InferenceEvents with the
producer SDK (``schemas.sdk``), exactly as an outside service would. Both count what
was sent, accepted (200 / delivery acknowledged) and failed, and stop at the first of:
events exhausted, ``duration_s`` passed, ``stop`` set.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from driftline.exceptions import ReplayInputError
from driftline.scenarios import SCENARIOS, ScenarioTraffic, generate, shift_probability
from schemas.breast_cancer import DEFAULT_MODEL_NAME, TARGET, feature_names, load_split
from schemas.exceptions import DriftlineError
from schemas.sdk import DriftlineProducer

#: Columns of a replay file that are not features.
REQUEST_ID = "request_id"
RESERVED_COLUMNS = (TARGET, REQUEST_ID)
#: Noise of the built-in scenarios, in standard deviations of each feature: the rows are
#: the breast-cancer rows with a little noise, so no two events are identical.
SCENARIO_NOISE_SD = 0.05


@dataclass(frozen=True)
class ReplayEvent:
    """One row to replay.

    :param label: its true label (sent as a FeedbackEvent when feedback is on).
    :param probability: P(class 1) to publish as the prediction (topic sender only);
        None = the topic sender publishes no prediction.
    """

    request_id: str
    features: dict[str, float]
    label: float | None = None
    probability: float | None = None


@dataclass
class ReplayCounts:
    """What a replay did. ``failures`` keeps the first few reasons, for the user."""

    sent: int = 0
    accepted: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, ok: bool, reason: str | None = None) -> None:
        with self._lock:
            if ok:
                self.accepted += 1
            else:
                self.failed += 1
                if reason and len(self.failures) < 5:
                    self.failures.append(reason)


#: Called after each event's outcome is known (progress bars).
OnResult = Callable[[ReplayCounts], None]


# --- sources ------------------------------------------------------------------------


def scenario_events(
    name: str,
    count: int,
    onset_fraction: float = 0.5,
    seed: int = 0,
    *,
    ramp: int | None = None,
    with_predictions: bool = False,
) -> list[ReplayEvent]:
    """``count`` events of the built-in scenario ``name`` on the breast-cancer rows.

    The change starts at ``onset_fraction`` of the events. Labels are the rows' truth
    (flipped by ``concept``); with ``with_predictions`` each event carries the baseline
    model's P(class 1) (pushed by ``prediction-only``), for the topic sender.

    :raises ReplayInputError: unknown scenario (the message lists the known ones).
    """
    if name not in SCENARIOS:
        raise ReplayInputError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    split = load_split()
    source = np.vstack([split.x_train, split.x_validation])
    truth = np.concatenate([split.y_train, split.y_validation])
    onset = min(count, max(0, round(count * onset_fraction)))
    traffic = generate(
        name, source, count, onset, np.random.default_rng(seed), ramp=ramp,
        noise_sd=SCENARIO_NOISE_SD,
    )  # fmt: skip
    probability = _baseline_probability(traffic) if with_predictions else None
    labels = traffic.labels(truth)
    names = split.features
    run = uuid.uuid4().hex[:8]
    return [
        ReplayEvent(
            request_id=f"replay-{name}-{run}-{i:06d}",
            features=dict(zip(names, traffic.features[i].tolist(), strict=True)),
            label=float(labels[i]),
            probability=None if probability is None else float(probability[i]),
        )
        for i in range(len(traffic))
    ]


def _baseline_probability(traffic: ScenarioTraffic) -> np.ndarray[Any, np.dtype[np.float64]]:
    """P(class 1) of the baseline pipeline (fitted on the training split) per event."""
    from retrain.training import build_pipeline

    split = load_split()
    model = build_pipeline().fit(split.x_train, split.y_train)
    probability = np.asarray(model.predict_proba(traffic.features)[:, 1], dtype=np.float64)
    if traffic.logit_shift is not None:
        probability = shift_probability(probability, traffic.logit_shift)
    return probability


def file_events(path: Path, expected_features: Sequence[str] | None = None) -> list[ReplayEvent]:
    """The rows of a CSV or Parquet file; every column but ``target`` and ``request_id``
    is a feature.

    :param expected_features: the model's features, when known: a missing or unknown
        column is an error naming it.
    :raises ReplayInputError: unreadable file, wrong suffix, non-numeric or empty cells,
        missing or unknown columns; the message names the file and the columns.
    """
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ReplayInputError(f"{path}: not a .csv or .parquet file")
    except ReplayInputError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise ReplayInputError(f"{path}: cannot read it: {exc}") from None
    if frame.empty:
        raise ReplayInputError(f"{path}: no rows")
    columns = [str(c) for c in frame.columns]
    features = [c for c in columns if c not in RESERVED_COLUMNS]
    if expected_features is not None:
        missing = [c for c in expected_features if c not in columns]
        unknown = [c for c in features if c not in expected_features]
        if missing or unknown:
            parts = [f"missing feature columns {missing}"] if missing else []
            parts += [f"unknown columns {unknown}"] if unknown else []
            raise ReplayInputError(f"{path}: {'; '.join(parts)}")
        features = list(expected_features)
    if not features:
        raise ReplayInputError(f"{path}: no feature columns (only {columns})")
    bad = [c for c in [*features, *([TARGET] if TARGET in columns else [])]
           if not pd.api.types.is_numeric_dtype(frame[c])]  # fmt: skip
    if bad:
        raise ReplayInputError(f"{path}: non-numeric columns {bad}")
    empty = {c: int(frame[c].isna().sum()) for c in features if frame[c].isna().any()}
    if empty:
        raise ReplayInputError(f"{path}: empty cells in columns {empty} (column: count)")
    values = frame[features].to_numpy(dtype=np.float64)
    labels = frame[TARGET].to_numpy(dtype=np.float64) if TARGET in columns else None
    ids = frame[REQUEST_ID].astype(str).tolist() if REQUEST_ID in columns else None
    run = uuid.uuid4().hex[:8]
    return [
        ReplayEvent(
            request_id=ids[i] if ids else f"replay-{path.stem}-{run}-{i:06d}",
            features=dict(zip(features, values[i].tolist(), strict=True)),
            label=None if labels is None or np.isnan(labels[i]) else float(labels[i]),
        )
        for i in range(len(frame))
    ]


def known_features(model_name: str) -> tuple[str, ...] | None:
    """The features of ``model_name`` when Driftline knows them (the built-in model)."""
    return feature_names() if model_name == DEFAULT_MODEL_NAME else None


# --- pacing -------------------------------------------------------------------------


class Pacer:
    """Event ``i`` is due at ``start + i / rate``; no rate = as fast as possible.

    Scheduling against the start (not the previous send) keeps the average rate exact
    when one send is slow: the next ones catch up.
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 events/s, got {rate}")
        self.rate = rate
        self.start = time.monotonic()

    def delay(self, index: int) -> float:
        """Seconds to wait before event ``index`` (0 when due)."""
        if self.rate is None:
            return 0.0
        return max(0.0, self.start + index / self.rate - time.monotonic())


# --- senders ------------------------------------------------------------------------


@dataclass
class ReplayBounds:
    """When a replay stops: events exhausted, ``duration_s`` passed, or ``stop`` set."""

    rate: float | None = None
    duration_s: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def done(self, started: float) -> bool:
        if self.stop.is_set():
            return True
        return self.duration_s is not None and time.monotonic() - started >= self.duration_s


class HttpSender:
    """POST each event to ``<url>/predict``, at most ``concurrency`` in flight.

    A 200 is accepted; any other status, a timeout or a refused connection is failed
    (the first few reasons are kept). With ``feedback`` (a producer), each accepted
    event's label goes to the feedback topic as a FeedbackEvent.
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        concurrency: int = 8,
        timeout_s: float = 10.0,
        feedback: DriftlineProducer | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.feedback = feedback
        self.headers = headers or {}

    def run(
        self,
        events: Sequence[ReplayEvent],
        bounds: ReplayBounds,
        on_result: OnResult | None = None,
    ) -> ReplayCounts:
        """Send ``events`` (blocking); return the counts."""
        return asyncio.run(self._run(events, bounds, on_result))

    async def _run(
        self, events: Sequence[ReplayEvent], bounds: ReplayBounds, on_result: OnResult | None
    ) -> ReplayCounts:
        counts = ReplayCounts()
        slots = asyncio.Semaphore(self.concurrency)
        pacer = Pacer(bounds.rate)
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            timeout=self.timeout_s, limits=limits, headers=self.headers
        ) as client:
            tasks: set[asyncio.Task[None]] = set()
            for i, event in enumerate(events):
                await asyncio.sleep(pacer.delay(i))
                if bounds.done(pacer.start):
                    break
                await slots.acquire()
                counts.sent += 1
                task = asyncio.create_task(self._one(client, event, counts, slots, on_result))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        return counts

    async def _one(
        self,
        client: httpx.AsyncClient,
        event: ReplayEvent,
        counts: ReplayCounts,
        slots: asyncio.Semaphore,
        on_result: OnResult | None,
    ) -> None:
        body = {
            "model_name": self.model_name,
            "features": event.features,
            "request_id": event.request_id,
        }
        try:
            answer = await client.post(f"{self.url}/predict", json=body)
            ok = answer.status_code == 200
            reason = None if ok else f"HTTP {answer.status_code}: {answer.text[:200]}"
        except httpx.HTTPError as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        finally:
            slots.release()
        if ok and self.feedback is not None and event.label is not None:
            self.feedback.send_feedback(
                request_id=event.request_id, model_name=self.model_name, label=event.label
            )
        counts.record(ok, reason)
        if on_result is not None:
            on_result(counts)


class TopicSender:
    """Publish each event as an InferenceEvent with the producer SDK.

    Accepted means Kafka acknowledged the record; a record the SDK refuses (validation)
    or Kafka does not acknowledge (an error, or no answer within ``flush_timeout_s`` after
    the last send: a broker that is down) is failed. The prediction is the event's probability
    (label ``probability >= 0.5``, probabilities of both classes) when it has one.
    """

    def __init__(
        self,
        producer: DriftlineProducer,
        model_name: str,
        model_version: str = "1",
        feedback: bool = False,
        flush_timeout_s: float = 30.0,
    ) -> None:
        self.producer = producer
        self.model_name = model_name
        self.model_version = model_version
        self.feedback = feedback
        self.flush_timeout_s = flush_timeout_s

    def run(
        self,
        events: Sequence[ReplayEvent],
        bounds: ReplayBounds,
        on_result: OnResult | None = None,
    ) -> ReplayCounts:
        counts = ReplayCounts()
        pacer = Pacer(bounds.rate)
        settled = threading.Lock()  # a late acknowledgement must not count twice
        unanswered: list[int] = []  # set once the flush gave up: the rest are failed

        def delivered(future: Future[Any]) -> None:
            error = future.exception()
            with settled:
                if unanswered:
                    return
                counts.record(error is None, None if error is None else str(error))
            if on_result is not None:
                on_result(counts)

        for i, event in enumerate(events):
            wait = pacer.delay(i)
            if wait > 0 and bounds.stop.wait(wait):
                break
            if bounds.done(pacer.start):
                break
            counts.sent += 1
            try:
                future = self._send(event)
            except DriftlineError as exc:  # refused before sending: names the field
                counts.record(False, str(exc))
                if on_result is not None:
                    on_result(counts)
                continue
            future.add_done_callback(delivered)
        self.producer.flush(self.flush_timeout_s)
        with settled:  # what Kafka has not acknowledged by now was not delivered
            unanswered.append(counts.sent - counts.accepted - counts.failed)
            for _ in range(unanswered[0]):
                counts.record(
                    False,
                    f"not acknowledged by Kafka within {self.flush_timeout_s:g} s "
                    "(is the broker up?)",
                )
        if unanswered[0] and on_result is not None:
            on_result(counts)
        return counts

    def _send(self, event: ReplayEvent) -> Future[Any]:
        p = event.probability
        future = self.producer.send_inference(
            model_name=self.model_name,
            model_version=self.model_version,
            features=event.features,
            prediction=None if p is None else float(p >= 0.5),
            probabilities=None if p is None else {"0": 1.0 - p, "1": p},
            latency_ms=0.0,
            request_id=event.request_id,
        )
        if self.feedback and event.label is not None:
            self.producer.send_feedback(
                request_id=event.request_id, model_name=self.model_name, label=event.label
            )
        return future
