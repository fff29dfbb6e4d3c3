"""Join the shadow's answers to the champion's by request id, and compare them per window.

Pure logic, no Kafka (:mod:`stream.shadow_app` feeds it). Serving answers a request with
the champion (variant ``baseline``, or ``canary``) and then, off the request path, asks
the shadow and publishes its answer with the same ``request_id`` (``variant=shadow``). A
pair is the two answers of one request; it belongs to the window of the *served*
answer's event time. Both sides may come first (the shadow's event is usually later,
but two replicas' events interleave), and each is held for a bounded **join window** of
event time, judged against the model's watermark (its newest event time):

- a served answer with no shadow answer by ``event_time + join_window_ms`` is counted
  ``unmatched_champion`` in its window (the shadow dropped it, or is not set);
- a shadow answer with no served answer by then is counted ``unmatched_shadow``;
- a window closes when the watermark passes ``window end + join_window_ms`` (every pair
  that can still form has formed);
- at most ``max_pending`` answers wait per side; beyond that the oldest is counted
  unmatched at once (memory stays bounded whatever the traffic).

Per window: how often the shadow predicts the same class (``agreement_rate``), how far
its predictions moved (``prediction_shift``: total variation distance between the two
predicted-class distributions; ``probability_shift``: mean absolute difference of the
probability both give the champion's class, same request), and each side's latency.
Only ``outcome=ok`` answers count. The first answer per side and request wins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.stats.labels import as_label

CHAMPION_VARIANTS = frozenset({"baseline", "canary"})


@dataclass(frozen=True, slots=True)
class Answer:
    """One variant's answer to one request: what the join uses of an InferenceEvent."""

    request_id: str
    model: str
    version: str
    shadow: bool
    event_time: int
    predicted: str | None
    probabilities: Mapping[str, float]
    latency_ms: float
    partition: int
    offset: int

    @classmethod
    def of(cls, event: Mapping[str, Any], partition: int, offset: int) -> Answer | None:
        """The answer of a decoded InferenceEvent; None for failed requests."""
        if event.get("outcome") != "ok":
            return None
        return cls(
            request_id=str(event["request_id"]),
            model=str(event["model_name"]),
            version=str(event["model_version"]),
            shadow=event["variant"] == "shadow",
            event_time=int(event["event_time"]),
            predicted=as_label(event.get("prediction")),
            probabilities=dict(event.get("probabilities") or {}),
            latency_ms=float(event["latency_ms"]),
            partition=partition,
            offset=offset,
        )


@dataclass
class WindowComparison:
    """One model's pairs in one window, and what could not be paired."""

    model: str
    start_ms: int
    end_ms: int
    champion_versions: set[str] = field(default_factory=set)
    shadow_versions: set[str] = field(default_factory=set)
    agree: int = 0
    champion_classes: Counter[str | None] = field(default_factory=Counter)
    shadow_classes: Counter[str | None] = field(default_factory=Counter)
    probability_diffs: list[float] = field(default_factory=list)
    champion_latency: list[float] = field(default_factory=list)
    shadow_latency: list[float] = field(default_factory=list)
    unmatched_champion: int = 0
    unmatched_shadow: int = 0
    #: Lowest offset per partition of the answers in it (what a commit must not pass).
    low_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return len(self.champion_latency)

    def note(self, answer: Answer) -> None:
        low = self.low_offsets.get(answer.partition)
        if low is None or answer.offset < low:
            self.low_offsets[answer.partition] = answer.offset

    def add(self, champion: Answer, shadow: Answer) -> None:
        self.note(champion)
        self.note(shadow)
        self.champion_versions.add(champion.version)
        self.shadow_versions.add(shadow.version)
        self.agree += champion.predicted == shadow.predicted
        self.champion_classes[champion.predicted] += 1
        self.shadow_classes[shadow.predicted] += 1
        cls = champion.predicted
        if cls is not None and cls in champion.probabilities and cls in shadow.probabilities:
            self.probability_diffs.append(
                abs(shadow.probabilities[cls] - champion.probabilities[cls])
            )
        self.champion_latency.append(champion.latency_ms)
        self.shadow_latency.append(shadow.latency_ms)

    def record(self, join_window_ms: int) -> dict[str, Any]:
        """The ShadowComparison record (``shadow_comparison.avsc``)."""
        n = self.pairs
        classes = set(self.champion_classes) | set(self.shadow_classes)
        shift = (
            0.5 * sum(abs(self.shadow_classes[c] - self.champion_classes[c]) for c in classes) / n
            if n
            else None
        )
        return {
            "model_name": self.model,
            "champion_version": _one(self.champion_versions),
            "shadow_version": _one(self.shadow_versions),
            "window_start": self.start_ms,
            "window_end": self.end_ms,
            "pair_count": n,
            "agreement_rate": self.agree / n if n else None,
            "prediction_shift": shift,
            "probability_shift": float(np.mean(self.probability_diffs))
            if self.probability_diffs
            else None,
            "champion_latency_p50_ms": _quantile(self.champion_latency, 0.5),
            "champion_latency_p99_ms": _quantile(self.champion_latency, 0.99),
            "shadow_latency_p50_ms": _quantile(self.shadow_latency, 0.5),
            "shadow_latency_p99_ms": _quantile(self.shadow_latency, 0.99),
            "unmatched_champion_count": self.unmatched_champion,
            "unmatched_shadow_count": self.unmatched_shadow,
            "join_window_ms": join_window_ms,
        }


def _one(values: set[str]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


class ShadowJoin:
    """Pair shadow and served answers by (model, request id); close windows by watermark."""

    def __init__(self, window_ms: int, join_window_ms: int, max_pending: int = 100_000) -> None:
        if window_ms <= 0 or join_window_ms < 0 or max_pending < 1:
            raise ValueError("window_ms must be > 0, join_window_ms >= 0, max_pending >= 1")
        self.window_ms = window_ms
        self.join_window_ms = join_window_ms
        self.max_pending = max_pending
        self.champions: dict[tuple[str, str], Answer] = {}
        self.shadows: dict[tuple[str, str], Answer] = {}
        self.windows: dict[tuple[str, int], WindowComparison] = {}
        self.max_time: dict[str, int] = {}
        #: Per model, the watermark of the last close: windows ending (+ join) by it are gone.
        self.closed_at: dict[str, int] = {}
        #: Answers that came after their window had closed, and repeated answers (ignored).
        self.late = 0
        self.duplicates = 0

    def add(self, answer: Answer) -> None:
        """Take one answer (in partition order)."""
        model, key = answer.model, (answer.model, answer.request_id)
        self.max_time[model] = max(self.max_time.get(model, answer.event_time), answer.event_time)
        own, other = (
            (self.shadows, self.champions) if answer.shadow else (self.champions, self.shadows)
        )
        if key in own:
            self.duplicates += 1
            return
        partner = other.pop(key, None)
        if partner is None:
            own[key] = answer
            if len(own) > self.max_pending:
                self._expire(own.pop(next(iter(own))))
            return
        champion, shadow = (partner, answer) if answer.shadow else (answer, partner)
        window = self._window(model, champion.event_time)
        if window is None:
            self.late += 1
        else:
            window.add(champion, shadow)

    def _window(self, model: str, event_time: int) -> WindowComparison | None:
        """The open window of ``event_time``; None when it has closed already."""
        start = event_time - event_time % self.window_ms
        end = start + self.window_ms
        if end + self.join_window_ms <= self.closed_at.get(model, end + self.join_window_ms - 1):
            return None
        window = self.windows.get((model, start))
        if window is None:
            window = self.windows[(model, start)] = WindowComparison(model, start, end)
        return window

    def _expire(self, answer: Answer) -> None:
        window = self._window(answer.model, answer.event_time)
        if window is None:
            self.late += 1
            return
        window.note(answer)
        if answer.shadow:
            window.unmatched_shadow += 1
        else:
            window.unmatched_champion += 1

    def close_ready(self) -> list[WindowComparison]:
        """Expire answers past the join window, then return the windows that closed."""
        for held in (self.champions, self.shadows):
            gone = [
                k for k, a in held.items()
                if a.event_time + self.join_window_ms <= self.max_time[a.model]
            ]  # fmt: skip
            for key in gone:
                self._expire(held.pop(key))
        ready = sorted(
            (w for w in self.windows.values()
             if w.end_ms + self.join_window_ms <= self.max_time[w.model]),
            key=lambda w: (w.start_ms, w.model),
        )  # fmt: skip
        for w in ready:
            del self.windows[(w.model, w.start_ms)]
        self.closed_at.update(self.max_time)
        return ready

    def low_offsets(self) -> dict[int, int]:
        """Per partition, the lowest offset of an answer still held (pending or windowed):
        committing beyond it would lose that answer on a restart."""
        low: dict[int, int] = {}
        for held in (self.champions, self.shadows):
            for a in held.values():
                if a.offset < low.get(a.partition, a.offset + 1):
                    low[a.partition] = a.offset
        for w in self.windows.values():
            for partition, offset in w.low_offsets.items():
                if offset < low.get(partition, offset + 1):
                    low[partition] = offset
        return low
