"""The SLO processor: InferenceEvents in, one SloWindow per (model, variant, window) out.

It runs on the drift processor's runtime (:mod:`stream.runtime`): per input partition a
:class:`~stream.runtime.windows.PartitionWindows` assigns events to tumbling event-time
windows with a watermark and allowed lateness, keyed by (model, variant, window start);
each window's state is a :class:`~stream.slo.SloWindowState` (exact counts and a
DDSketch of latencies). When the watermark closes a window, its counts join the
(model, variant)'s burn-rate history and the availability and latency SLOs are
evaluated over every rule's look-back windows ending at the window's end
(:func:`stream.slo.evaluate`); the result is an SloWindow record keyed by model.
Kafka plumbing lives in :class:`stream.runtime.loop.ProcessorLoop`.

Burn-rate history lives in memory for the longest look-back (6 h by default). When
partitions are assigned it is re-seeded from ``history_source`` (the SloWindows already
on ``slo.windows``, :mod:`stream.slo_history`), so a restart or a rebalance does not
make the long look-backs forget (``docs/slo.md``, "Restarts").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.inference_batch import OUTCOMES, VARIANTS, InferenceBatch
from stream import slo_metrics as m
from stream.runtime.checkpoint import Checkpoint
from stream.runtime.windows import ClosedWindow, PartitionWindows, WindowKey
from stream.slo import (
    DEFAULT_RULES,
    SLO_KINDS,
    BurnEvaluation,
    BurnHistory,
    BurnRule,
    SloTargets,
    SloWindowState,
    evaluate,
)
from stream.slo.burn_rate import WindowCounts

#: Where the burn-rate history comes back from after an assignment: SloWindow records.
HistorySource = Callable[[], Iterable[Mapping[str, Any]]]

IntArray = npt.NDArray[np.int64]
LINEAGE_HEADER = "driftline.lineage"
NATURAL_KEY_HEADER = "driftline.natural-key"


@dataclass(frozen=True, slots=True)
class SloOutput:
    """An SloWindow ready to produce: key (model), record value, headers (lineage)."""

    key: str
    value: dict[str, Any]
    headers: list[tuple[str, str | bytes | None]]

    @property
    def natural_key(self) -> tuple[str, str, int]:
        """(model, variant, window start): what a consumer de-duplicates on."""
        return (self.value["model_name"], self.value["variant"], self.value["window_start"])


class SloProcessor:
    """SLO windows and burn rates for every assigned partition of one input topic.

    :param window_ms: tumbling window length.
    :param lateness_ms: allowed lateness of the watermark.
    :param targets: the availability and latency SLOs.
    :param rules: multi-window burn-rate rules (default: page and ticket).
    :param relative_accuracy: the latency sketch's relative error bound.
    :param history_source: SloWindows written before (``slo.windows``) to re-seed the
        burn-rate history from after partitions are assigned; None: never re-seeded.
    """

    def __init__(
        self,
        *,
        window_ms: int,
        lateness_ms: int,
        targets: SloTargets | None = None,
        rules: Sequence[BurnRule] = DEFAULT_RULES,
        relative_accuracy: float = 0.01,
        clock: Callable[[], float] = time.time,
        history_source: HistorySource | None = None,
    ) -> None:
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.targets = targets or SloTargets()
        self.rules = tuple(rules)
        self.relative_accuracy = relative_accuracy
        self.clock = clock
        self.partitions: dict[tuple[str, int], PartitionWindows[SloWindowState]] = {}
        #: Closed-window counts per (model, variant), for the burn-rate look-backs.
        self.history: dict[tuple[str, str], BurnHistory] = {}
        longest = max((r.long_s for r in self.rules), default=0)
        self.keep_ms = longest * 1000
        self.history_source = history_source
        self._reseed = False

    # -- partitions -------------------------------------------------------------------

    def assign(self, topic: str, partition: int, checkpoint: Checkpoint | None) -> None:
        """Start (or restart from ``checkpoint``) a partition's windows."""
        self.partitions[(topic, partition)] = self._windows(checkpoint)
        self._reseed = self.history_source is not None  # before the next window closes

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition (its open windows are rebuilt by whoever gets it next)."""
        self.partitions.pop((topic, partition), None)

    def checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        """What to commit for the partition (None before its first event)."""
        windows = self.partitions.get((topic, partition))
        return None if windows is None else windows.checkpoint()

    def _windows(self, checkpoint: Checkpoint | None = None) -> PartitionWindows[SloWindowState]:
        return PartitionWindows(self.window_ms, self.lateness_ms, self._new_state, checkpoint)

    def _new_state(self, key: WindowKey) -> SloWindowState:
        return SloWindowState(self.relative_accuracy, self.targets.latency_threshold_ms)

    # -- events -----------------------------------------------------------------------

    def process(self, topic: str, partition: int, batch: InferenceBatch, offsets: IntArray) -> None:
        """Count a decoded batch of one partition.

        :param offsets: offset of every message of the batch, bad ones included
            (``batch.index`` maps rows to them); all of them count as consumed.
        """
        windows = self.partitions.get((topic, partition))
        if windows is None:
            windows = self._windows()
            self.partitions[(topic, partition)] = windows
        if len(batch):
            pairs, codes = _pair_codes(batch)
            ingested = windows.ingest_codes(pairs, codes, batch.event_time, offsets[batch.index])
            for (model, variant), count in ingested.late.items():
                m.LATE_EVENTS.labels(model, variant).inc(count)
            versions = batch.model_version
            one_version = versions.count(versions[0]) == len(versions)
            for window, rows in ingested.groups:
                outcome = batch.outcome[rows]
                window.state.update(
                    batch.latency_ms[rows],
                    outcome,
                    versions[:1] if one_version else {versions[r] for r in rows.tolist()},
                )
                by_outcome = np.bincount(outcome.astype(np.int64), minlength=len(OUTCOMES))
                for name, count in zip(OUTCOMES, by_outcome.tolist(), strict=True):
                    if count:
                        m.REQUESTS.labels(window.key.model, window.key.version, name).inc(count)
        if offsets.size:
            windows.next_offset = max(windows.next_offset, int(offsets.max()) + 1)

    # -- burn-rate history ------------------------------------------------------------

    def _history(self, model: str, variant: str) -> BurnHistory:
        history = self.history.get((model, variant))
        if history is None:
            history = self.history[(model, variant)] = BurnHistory(self.keep_ms)
        return history

    def seed_history(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Add the counts of earlier SloWindow records to the burn-rate history.

        A window already held is replaced by the record's (the same window emitted
        twice is identical); windows past the longest look-back drop out. Returns how
        many records were read.
        """
        count = 0
        for record in records:
            history = self._history(record["model_name"], record["variant"])
            history.add(
                WindowCounts(
                    record["window_start"],
                    record["window_end"],
                    record["request_count"],
                    record["server_error_count"],
                    record.get("slow_request_count", 0),
                )
            )
            count += 1
        return count

    # -- closing ----------------------------------------------------------------------

    def close_ready(self) -> list[SloOutput]:
        """Evaluate and return every window the watermarks closed, oldest first per partition."""
        if self._reseed and self.history_source is not None:
            self._reseed = False
            self.seed_history(self.history_source())
        out: list[SloOutput] = []
        now = self.clock()
        for (topic, partition), windows in self.partitions.items():
            for model in windows.max_time:
                mark = windows.watermark(model)
                if mark is not None:
                    m.WATERMARK_LAG.labels(model).set(now - mark / 1000.0)
            for closed in windows.close_ready():
                out.append(self._output(topic, partition, closed))
        return out

    def _output(
        self, topic: str, partition: int, closed: ClosedWindow[SloWindowState]
    ) -> SloOutput:
        key, state = closed.key, closed.state
        model, variant = key.model, key.version
        history = self._history(model, variant)
        history.add(state.counts(key.start_ms, closed.end_ms))
        result = evaluate(history, closed.end_ms, self.targets, self.rules)
        quantiles = state.quantiles()
        value = {
            "model_name": model,
            "model_version": state.model_version,
            "variant": variant,
            "window_start": key.start_ms,
            "window_end": closed.end_ms,
            "request_count": state.requests,
            "client_error_count": state.client_errors,
            "server_error_count": state.server_errors,
            "error_rate": state.error_rate,
            "latency_p50_ms": quantiles[0.5],
            "latency_p95_ms": quantiles[0.95],
            "latency_p99_ms": quantiles[0.99],
            "burn_rates": result.availability,
            "late_event_count": closed.late_event_count,
            "slow_request_count": state.slow,
            "latency_threshold_ms": self.targets.latency_threshold_ms,
            "availability_target": self.targets.availability,
            "latency_target": self.targets.latency,
            "latency_burn_rates": result.latency,
            "burn_alerts": [a.record() for a in result.alerts],
        }
        _observe(model, variant, state, quantiles, result)
        lineage = f"{topic}:{partition}:{closed.first_offset}-{closed.last_offset}"
        natural = f"{model}/{variant}/{key.start_ms}"
        return SloOutput(
            key=model,
            value=value,
            headers=[(LINEAGE_HEADER, lineage.encode()), (NATURAL_KEY_HEADER, natural.encode())],
        )


def _observe(
    model: str,
    variant: str,
    state: SloWindowState,
    quantiles: dict[float, float],
    result: BurnEvaluation,
) -> None:
    """Set the Prometheus metrics of one closed window."""
    labels = (model, variant)
    m.WINDOWS_CLOSED.labels(*labels).inc()
    m.WINDOW_REQUESTS.labels(*labels).set(state.requests)
    m.ERROR_RATE.labels(*labels).set(state.error_rate)
    m.CLIENT_ERROR_RATE.labels(*labels).set(
        state.client_errors / state.requests if state.requests else 0.0
    )
    for q, value in quantiles.items():
        m.LATENCY.labels(*labels, str(q)).set(value / 1000.0)
    for slo in SLO_KINDS:
        for window, rate in result.rates(slo).items():
            m.BURN_RATE.labels(*labels, slo, window).set(rate)
    for alert in result.alerts:
        m.BURN_ALERT.labels(*labels, alert.slo, alert.severity).set(1.0 if alert.firing else 0.0)


def _pair_codes(batch: InferenceBatch) -> tuple[list[tuple[str, str]], IntArray]:
    """The batch's (model, variant) pairs and each row's code into them.

    Inputs are keyed by model, so a partition's batch is usually one model: then the
    code is the variant index (no Python loop per row).
    """
    names = batch.model_name
    n = len(names)
    variant = batch.variant.astype(np.int64)
    if names.count(names[0]) == n:
        return [(names[0], v) for v in VARIANTS], variant
    index: dict[str, int] = {}
    model_codes = np.fromiter(
        (index.setdefault(name, len(index)) for name in names), dtype=np.int64, count=n
    )
    pairs = [(name, v) for name in index for v in VARIANTS]
    return pairs, model_codes * len(VARIANTS) + variant
