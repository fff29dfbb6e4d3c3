"""Partitioned vs keyed drift processing, without Kafka: what the extra hop costs.

The same InferenceEvents of one model (30 breast-cancer features, 1-minute windows,
drift in the last third, then one closing event per partition) are decoded once, before
any timing, into the batches each mode's loop would see:

- **keyed**: consume batches of 5,000, all on one partition (the model's);
- **partitioned**: the same consume batches, the events spread over 6 partitions
  (event ``i`` on ``i % 6``, as producers keying by request id spread them), so each
  consume batch is six per-partition batches of ~833.

Timed, alternating, ``REPEATS`` times each, with the production defaults (tumbling 1
minute, sliding 15 minutes every minute, 30 s lateness, detectors every 500 events; no
feedback join on either side):

- (a) a keyed :class:`~stream.drift_processor.DriftProcessor`: ``process`` each batch,
  ``close_ready``, each DriftScore encoded with the real codec;
- (b) a :class:`~stream.partitioned.PartitionedDriftProcessor` over the 6 partitions,
  each partial and progress record encoded with the real codec as the producer does,
  then decoded (codec + ``record_to_partial``) into one
  :class:`~stream.merge.MergeDomain` that merges and scores them (DriftScores encoded
  too), after each consume batch as the loops do.

Both sides must give the same DriftScores (lineage and detector states aside: one
partition vs six), else the benchmark stops. What partitioned mode adds is paid per
window and partition (a share encoded, decoded, merged) and per consume batch and
partition (six smaller batches), so it is measured at two densities: 12 windows of
10,000 events (120,006 events) and 4 windows of 60,000 (240,006). Printed: events/s of
each side (medians), their ratio, the merge step's own rate (drift.partials records and
shares per second of the time spent decoding, merging and scoring them), and the share
of (b)'s time spent in the merge step and in encoding the partials. The process is
pinned to one CPU.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.catalog import DRIFT_PARTIAL, DRIFT_SCORE
from schemas.codec import make_codec
from schemas.inference_batch import InferenceBatch, decode_inference_batch
from stream.drift_output import DriftOutput
from stream.drift_processor import DriftProcessor
from stream.merge import MergeDomain
from stream.partials import PartitionProgress, WindowPartial
from stream.partials_codec import record_to_partial
from stream.partitioned import PartitionedDriftProcessor
from stream.profiles import FileProfileSource
from stream.settings import DriftProcessorSettings, DriftStatsSettings
from stream.stats import DecisionRule
from tests.integration.test_drift_processor_support import (
    T0,
    WINDOW_MS,
    breast_cancer,
    event,
    window_events,
    write_profiles,
)

MODEL = "bench-partitioned"
TOPIC = "inference.events"
#: (windows, events per window)
DENSITIES = ((12, 10_000), (4, 60_000))
BATCH = 5_000
PARTITIONS = 6
REPEATS = 5
CODEC = make_codec()
#: One consume call: (partition, decoded batch, its offsets) per partition it returned.
Consumed = list[tuple[int, InferenceBatch, npt.NDArray[np.int64]]]


def _events(windows: int, per_window: int) -> list[tuple[int, bytes]]:
    """(partition, value): request events spread ``i % 6``, then one closing event per
    partition a minute after the last window."""
    rng = np.random.default_rng(0)
    values: list[bytes] = []
    for w in range(windows):
        values += window_events(MODEL, w, per_window, rng, 1.0 if 3 * w >= 2 * windows else 0)
    x, names = breast_cancer()
    closing = [
        (p, event(MODEL, T0 + (windows + 1) * WINDOW_MS, x[p], names, 900_000 + p))
        for p in range(PARTITIONS)
    ]
    return [(i % PARTITIONS, v) for i, v in enumerate(values)] + closing


def _consumed(events: list[tuple[int, bytes]], spread: bool) -> list[Consumed]:
    """Each consume batch decoded per partition (keyed: everything on partition 0)."""
    next_offset = dict.fromkeys(range(PARTITIONS), 0)
    out: list[Consumed] = []
    for start in range(0, len(events), BATCH):
        by_partition: dict[int, list[bytes]] = {}
        for p, value in events[start : start + BATCH]:
            by_partition.setdefault(p if spread else 0, []).append(value)
        call: Consumed = []
        for p, values in sorted(by_partition.items()):
            first = next_offset[p]
            next_offset[p] += len(values)
            batch = decode_inference_batch(values, CODEC)
            if batch.errors:
                raise RuntimeError(f"the bench's own events do not decode: {batch.errors[:3]}")
            call.append((p, batch, np.arange(first, first + len(values), dtype=np.int64)))
        out.append(call)
    return out


def _inner(profiles: Path, partitioned: bool) -> DriftProcessor:
    """A drift processor as ``build_drift_loop`` makes it, without the feedback join."""
    settings = DriftProcessorSettings()
    return DriftProcessor(
        FileProfileSource(profiles),
        window_ms=round(settings.window_s * 1000),
        lateness_ms=round(settings.allowed_lateness_s * 1000),
        rule=DecisionRule.from_settings(DriftStatsSettings()),
        detector_block_size=settings.detector_block_size,
        plan=settings.window_plan(),
        partitioned=partitioned,
    )


def _keyed(calls: list[Consumed], profiles: Path) -> tuple[float, list[DriftOutput]]:
    processor = _inner(profiles, partitioned=False)
    scores: list[DriftOutput] = []
    start = time.perf_counter()
    for call in calls:
        for p, batch, offsets in call:
            processor.process(TOPIC, p, batch, offsets)
        for output in processor.close_ready():
            CODEC.encode(DRIFT_SCORE, output.value)
            scores.append(output)
    return time.perf_counter() - start, scores


@dataclass
class PartitionedRun:
    """One run of (b): seconds in all, in the merge step, in its decoding, and in
    encoding the partials (the drift processor's side)."""

    elapsed: float
    merge_s: float
    decode_s: float
    encode_s: float
    records: int
    shares: int
    scores: list[DriftOutput]


def _partitioned(calls: list[Consumed], profiles: Path) -> PartitionedRun:
    settings = DriftProcessorSettings()
    processor = PartitionedDriftProcessor(
        _inner(profiles, partitioned=True),
        partition_count=lambda topic: PARTITIONS,
        is_empty=lambda topic, partition: False,
        progress_interval_s=settings.progress_interval_s,
        heartbeat_s=settings.progress_heartbeat_s,
    )
    source = FileProfileSource(profiles)
    domain = MergeDomain(DecisionRule.from_settings(DriftStatsSettings()))
    scores: list[DriftOutput] = []
    merge_s, decode_s, encode_s, records, shares = 0.0, 0.0, 0.0, 0, 0
    start = time.perf_counter()
    for call in calls:
        for p, batch, offsets in call:
            processor.process(TOPIC, p, batch, offsets)
        outputs = processor.close_ready()
        encoding = time.perf_counter()
        wire = [CODEC.encode(DRIFT_PARTIAL, output.value) for output in outputs]
        encode_s += time.perf_counter() - encoding
        if not wire:
            continue
        merging = time.perf_counter()
        items = [record_to_partial(CODEC.decode(data).value, source) for data in wire]
        decode_s += time.perf_counter() - merging
        for item in items:  # the merge step: decode, add, then close once per batch
            if not isinstance(item, WindowPartial | PartitionProgress):
                raise RuntimeError(f"not a partial: {item!r}")
            domain.add(item, records)
            records += 1
            shares += isinstance(item, WindowPartial)
        for output in domain.close_ready():
            CODEC.encode(DRIFT_SCORE, output.value)
            scores.append(output)
        merge_s += time.perf_counter() - merging
    elapsed = time.perf_counter() - start
    return PartitionedRun(elapsed, merge_s, decode_s, encode_s, records, shares, scores)


def _comparable(scores: list[DriftOutput]) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """DriftScores by natural key without what differs by design between one partition
    and six: lineage and the (per-partition) detector states."""
    out = {}
    for score in scores:
        value = dict(score.value)
        value.pop("lineage")
        value.pop("change_points")
        out[score.natural_key] = value
    if len(out) != len(scores):
        raise RuntimeError("a window was emitted twice")
    return out


@dataclass
class Row:
    """Medians of one density."""

    events: int
    windows: int
    keyed: float
    partitioned: float
    merge_records: float
    merge_shares: float
    merge_part: float
    decode_part: float
    encode_part: float
    scores: int
    records: int
    shares: int


def _density(windows: int, per_window: int, profiles: Path) -> Row:
    events = _events(windows, per_window)
    keyed_calls, spread_calls = _consumed(events, spread=False), _consumed(events, spread=True)
    keyed_s: list[float] = []
    runs: list[PartitionedRun] = []
    for _ in range(REPEATS):
        elapsed, keyed_scores = _keyed(keyed_calls, profiles)
        keyed_s.append(elapsed)
        runs.append(_partitioned(spread_calls, profiles))
    want, got = _comparable(keyed_scores), _comparable(runs[-1].scores)
    if got != want:
        raise RuntimeError("partitioned DriftScores differ from the keyed ones")
    n = len(events)
    print(
        f"  {n:,} events in {windows} windows: runs (a) {[round(n / s) for s in keyed_s]}, "
        f"(b) {[round(n / r.elapsed) for r in runs]}",
        flush=True,
    )
    return Row(
        events=n,
        windows=windows,
        keyed=statistics.median(n / s for s in keyed_s),
        partitioned=statistics.median(n / r.elapsed for r in runs),
        merge_records=statistics.median(r.records / r.merge_s for r in runs),
        merge_shares=statistics.median(r.shares / r.merge_s for r in runs),
        merge_part=statistics.median(r.merge_s / r.elapsed for r in runs),
        decode_part=statistics.median(r.decode_s / r.merge_s for r in runs),
        encode_part=statistics.median(r.encode_s / r.elapsed for r in runs),
        scores=len(want),
        records=runs[-1].records,
        shares=runs[-1].shares,
    )


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        profiles = write_profiles(Path(tmp), [MODEL])
        rows = [_density(windows, per_window, profiles) for windows, per_window in DENSITIES]
    columns = [f"{r.events // r.windows // 1000}k/window" for r in rows]
    print(
        f"{'1 core, no Kafka, median of ' + str(REPEATS):<48}"
        + "".join(f"{c:>14}" for c in columns)
    )
    table = [
        ("(a) keyed, 1 partition: events/s", [f"{r.keyed:,.0f}" for r in rows]),
        ("(b) partitioned, 6 + codec + merge: events/s", [f"{r.partitioned:,.0f}" for r in rows]),
        ("(b) / (a)", [f"{r.partitioned / r.keyed:.2f}" for r in rows]),
        ("merge step: drift.partials records/s", [f"{r.merge_records:,.0f}" for r in rows]),
        ("merge step: shares/s", [f"{r.merge_shares:,.0f}" for r in rows]),
        ("(b) time in the merge step", [f"{r.merge_part:.1%}" for r in rows]),
        ("  of which decoding (codec + record_to_partial)", [f"{r.decode_part:.1%}" for r in rows]),
        ("(b) time encoding partials (validated)", [f"{r.encode_part:.1%}" for r in rows]),
    ]
    for label, cells in table:
        print(f"{label:<48}" + "".join(f"{c:>14}" for c in cells))
    for r in rows:
        print(
            f"{r.events:,} events: {r.scores} DriftScores each side (equal but lineage and "
            f"detectors); (b) sent {r.records} records ({r.shares} shares, "
            f"{r.records - r.shares} progress)"
        )


if __name__ == "__main__":
    main()
