"""Join FeedbackEvents (labels) to InferenceEvents (predictions) by request id.

Pure logic, no Kafka: the drift processor feeds it the predictions it counts and the
FeedbackEvents it reads, and gets back :class:`Joined` pairs. Both sides may come
first. Everything is held for a bounded **join window** of event time, judged
against the model's watermark (newest inference event time minus the allowed lateness,
what closes windows):

- a prediction with event time ``t`` is held until the watermark passes
  ``t + join_window_ms``; then it leaves unlabelled (``expired``);
- a FeedbackEvent with no prediction yet (label before prediction: the topics are
  keyed differently, so their order is arbitrary) is held until the watermark passes its
  own event time ``+ join_window_ms``; then it is ``expired`` (the prediction is later
  than a join window, or was never seen by this instance);
- memory is bounded by count too: more than ``max_predictions`` held predictions or
  ``max_feedback`` held labels evict the oldest (``evicted``).

A second label for a request id already labelled (or held) is a ``duplicate`` and is
ignored: the first label wins. Predictions are held per batch in columnar chunks (one
dict entry per request id, no Python object per row), so holding them costs a dict
insert per event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count, repeat
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import VARIANTS
from stream.stats.labels import as_label

IntArray = npt.NDArray[np.int64]
CodeArray = npt.NDArray[np.int8]
ObjectArray = npt.NDArray[np.object_]
Dropped = Literal["expired", "evicted", "not_owned", "revoked"]


class Label(NamedTuple):
    """A decoded FeedbackEvent: the fields the join uses (a tuple: cheap per label)."""

    feedback_id: str
    request_id: str
    model: str
    label: float | str
    event_time: int


class Prediction(NamedTuple):
    """A held prediction, as a join returns it."""

    model: str
    version: str
    window_start: int
    variant: str
    event_time: int
    predicted: str | None
    #: Where the prediction was counted (the processor's partition key).
    source: tuple[str, int]


class Joined(NamedTuple):
    """A prediction and its label; ``correct`` compares their labels (:func:`as_label`)."""

    prediction: Prediction
    label: Label

    @property
    def correct(self) -> bool:
        """The predicted class equals the label (numbers normalised: ``1.0`` is ``"1"``)."""
        return self.prediction.predicted is not None and self.prediction.predicted == as_label(
            self.label.label
        )


@dataclass(slots=True)
class _Chunk:
    """Predictions of one window group of one batch (same model, version, window)."""

    model: str
    version: str
    window_start: int
    source: tuple[str, int]
    request_ids: Sequence[str]
    event_time: IntArray
    variant: CodeArray
    predicted: ObjectArray
    newest: int
    labelled: npt.NDArray[np.bool_] = field(init=False)
    alive: bool = True

    def __post_init__(self) -> None:
        self.labelled = np.zeros(len(self.request_ids), dtype=bool)

    def prediction(self, row: int) -> Prediction:
        return Prediction(
            self.model,
            self.version,
            self.window_start,
            VARIANTS[int(self.variant[row])],
            int(self.event_time[row]),
            as_label(self.predicted[row]),
            self.source,
        )

    def release(self) -> None:
        """Drop the columns (a dead chunk may wait in a deque a while)."""
        self.alive = False
        self.request_ids = ()
        self.event_time = np.empty(0, dtype=np.int64)
        self.variant = np.empty(0, dtype=np.int8)
        self.predicted = np.empty(0, dtype=object)


@dataclass
class JoinCounts:
    """What happened to predictions and labels since the last :meth:`FeedbackJoin.take_counts`
    (per model): the processor turns these into Prometheus counters."""

    joined: dict[str, int] = field(default_factory=dict)
    duplicate: dict[str, int] = field(default_factory=dict)
    feedback_dropped: dict[tuple[str, Dropped], int] = field(default_factory=dict)
    predictions_dropped: dict[tuple[str, Dropped], int] = field(default_factory=dict)


def _bump(table: dict[Any, int], key: Any, n: int = 1) -> None:
    if n:
        table[key] = table.get(key, 0) + n


class FeedbackJoin:
    """Held predictions and labels, joined by request id within a join window.

    :param join_window_ms: how long (event time, against the model's watermark) either
        side waits for the other.
    :param max_predictions: most predictions held at once (oldest evicted first).
    :param max_feedback: most unmatched labels held at once (oldest evicted first).
    """

    def __init__(
        self, join_window_ms: int, *, max_predictions: int = 1_000_000, max_feedback: int = 100_000
    ) -> None:
        if join_window_ms < 0 or max_predictions < 1 or max_feedback < 1:
            raise ValueError(
                "join_window_ms must be >= 0 and max_predictions, max_feedback >= 1, got "
                f"{join_window_ms}, {max_predictions}, {max_feedback}"
            )
        self.join_window_ms = join_window_ms
        self.max_predictions = max_predictions
        self.max_feedback = max_feedback
        self._seen: dict[str, tuple[_Chunk, int]] = {}
        self._chunks: deque[_Chunk] = deque()  # arrival order (capacity eviction)
        self._by_model: dict[str, deque[_Chunk]] = {}  # arrival order per model (expiry)
        self._held_rows = 0
        self._dead = 0  # released chunks still in the deques
        #: Labels waiting for their prediction, per model, in arrival order.
        self._waiting: dict[str, dict[str, Label]] = {}
        self._waiting_count = 0
        self.counts = JoinCounts()

    # -- sizes ------------------------------------------------------------------------

    @property
    def held_predictions(self) -> int:
        """Predictions held (labelled ones included, until they expire)."""
        return self._held_rows

    @property
    def held_feedback(self) -> int:
        """Labels waiting for their prediction."""
        return self._waiting_count

    # -- input ------------------------------------------------------------------------

    def add_predictions(
        self,
        *,
        model: str,
        version: str,
        window_start: int,
        source: tuple[str, int],
        request_ids: Sequence[str],
        event_time: IntArray,
        variant: CodeArray,
        predicted: ObjectArray,
    ) -> list[Joined]:
        """Hold a group of predictions (one model, version and window); return those
        whose label was already waiting.

        :param variant: :data:`~schemas.inference_batch.VARIANTS` codes.
        :param predicted: the predicted values (number, class label or None), compared
            with labels through :func:`as_label` when joined.
        """
        n = len(request_ids)
        if n == 0:
            return []
        chunk = _Chunk(
            model, version, window_start, source, request_ids, event_time, variant, predicted,
            int(event_time.max()),
        )  # fmt: skip
        self._seen.update(zip(request_ids, zip(repeat(chunk), count()), strict=False))
        self._chunks.append(chunk)
        self._by_model.setdefault(model, deque()).append(chunk)
        self._held_rows += n
        joined: list[Joined] = []
        waiting = self._waiting.get(model)
        if waiting:
            for row in [i for i, rid in enumerate(request_ids) if rid in waiting]:
                label = waiting.pop(request_ids[row])
                self._waiting_count -= 1
                chunk.labelled[row] = True
                joined.append(Joined(chunk.prediction(row), label))
            _bump(self.counts.joined, model, len(joined))
        while self._held_rows > self.max_predictions and self._chunks:
            self._drop_chunk(self._chunks[0], "evicted")
        return joined

    def add_feedback(self, label: Label) -> Joined | None:
        """Join ``label`` to its held prediction, or hold it; None when not joined.

        A label of a model this instance has not counted yet is held too (its prediction
        may simply not have been read yet); if the model never shows up, it leaves as
        ``not_owned`` (another instance counts that model).
        """
        entry = self._seen.get(label.request_id)
        if entry is not None and entry[0].alive:
            chunk, row = entry
            if chunk.labelled[row]:
                _bump(self.counts.duplicate, chunk.model)
                return None
            chunk.labelled[row] = True
            _bump(self.counts.joined, chunk.model)
            return Joined(chunk.prediction(row), label)
        waiting = self._waiting.setdefault(label.model, {})
        if label.request_id in waiting:
            _bump(self.counts.duplicate, label.model)
            return None
        waiting[label.request_id] = label
        self._waiting_count += 1
        while self._waiting_count > self.max_feedback:
            self._evict_oldest_label()
        return None

    # -- expiry -----------------------------------------------------------------------

    def expire(self, watermarks: Mapping[str, int]) -> None:
        """Drop what the join window has passed.

        :param watermarks: model -> watermark (ms) of every model this instance counts.
            Labels of other models expire against the newest of these (``not_owned``).

        Per model, oldest first, stopping at the first one still inside the window (held
        items arrive roughly in event-time order; a straggler behind a newer one leaves
        with it or through the count bound).
        """
        if not watermarks:
            return
        newest = max(watermarks.values())
        for model in [m for m in self._waiting if m not in watermarks]:
            self._expire_labels(model, newest, "not_owned")
        for model, mark in watermarks.items():
            self._expire_labels(model, mark, "expired")
            chunks = self._by_model.get(model)
            while chunks and (not chunks[0].alive or chunks[0].newest + self.join_window_ms < mark):
                if chunks[0].alive:
                    self._drop_chunk(chunks[0], "expired")
                else:
                    chunks.popleft()
                    self._dead -= 1
        while self._chunks and not self._chunks[0].alive:
            self._chunks.popleft()
            self._dead -= 1

    def drop_source(self, source: tuple[str, int]) -> None:
        """Drop the predictions counted from ``source`` (a partition this instance lost:
        whoever gets it replays them); they leave as ``revoked``."""
        for chunk in [c for c in self._chunks if c.alive and c.source == source]:
            self._drop_chunk(chunk, "revoked")

    def _expire_labels(self, model: str, mark: int, why: Dropped) -> None:
        waiting = self._waiting.get(model)
        while waiting:
            request_id, label = next(iter(waiting.items()))
            if label.event_time + self.join_window_ms >= mark:
                break
            del waiting[request_id]
            self._waiting_count -= 1
            _bump(self.counts.feedback_dropped, (model, why))
        if waiting is not None and not waiting:
            del self._waiting[model]

    def _drop_chunk(self, chunk: _Chunk, why: Dropped) -> None:
        seen = self._seen
        for request_id in chunk.request_ids:
            entry = seen.get(request_id)
            if entry is not None and entry[0] is chunk:
                del seen[request_id]
        self._held_rows -= len(chunk.request_ids)
        _bump(self.counts.predictions_dropped, (chunk.model, why), int((~chunk.labelled).sum()))
        chunk.release()
        self._dead += 2  # once in each deque
        for chunks in (self._chunks, self._by_model.get(chunk.model)):
            if chunks and chunks[0] is chunk:
                chunks.popleft()
                self._dead -= 1
        if self._dead > 64 + len(self._chunks):  # compact: dead chunks stay few
            self._chunks = deque(c for c in self._chunks if c.alive)
            for model, chunks in list(self._by_model.items()):
                self._by_model[model] = deque(c for c in chunks if c.alive)
            self._dead = 0

    def _evict_oldest_label(self) -> None:
        oldest: tuple[int, str] | None = None  # labels of the model whose head is oldest
        for model, waiting in self._waiting.items():
            if waiting:
                head = next(iter(waiting.values()))
                if oldest is None or head.event_time < oldest[0]:
                    oldest = (head.event_time, model)
        if oldest is None:
            return
        waiting = self._waiting[oldest[1]]
        del waiting[next(iter(waiting))]
        self._waiting_count -= 1
        _bump(self.counts.feedback_dropped, (oldest[1], "evicted"))

    def take_counts(self) -> JoinCounts:
        """The counts since the last call (and start new ones)."""
        counts, self.counts = self.counts, JoinCounts()
        return counts
