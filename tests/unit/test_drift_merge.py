"""The merge domain's rules: wait for every partition, drop replays, report late shares,
leave empty partitions out, and restart from a checkpoint without emitting twice."""

from __future__ import annotations

import random

import numpy as np
import pytest
from prometheus_client import REGISTRY

from stream.detectors import DetectorState
from stream.drift_output import DriftOutput
from stream.exceptions import CheckpointError
from stream.merge import MergeCheckpoint, MergeDomain, merge_detector_states
from stream.merge_app import PartialsMerger
from stream.partials import PartitionProgress, Source, WindowPartial
from stream.performance import WindowPerformance
from stream.profiles import FileProfileSource
from stream.stats import DecisionRule, ReferenceProfile, WindowSketch

RNG = np.random.default_rng(2)
PROFILE = ReferenceProfile.build(RNG.normal(size=(2000, 2)), ["a", "b"], bins=6)
MINUTE = 60_000
Record = WindowPartial | PartitionProgress


def share(partition: int, minute: int, n: int = 50, shift: float = 0.0) -> WindowPartial:
    sketch = WindowSketch(PROFILE).update(RNG.normal(size=(n, 2)) + shift)
    return WindowPartial(
        model="m", version="1", kind="tumbling", start_ms=minute * MINUTE,
        end_ms=(minute + 1) * MINUTE, source=Source("events", partition), sketch=sketch,
        performance=WindowPerformance(), late_event_count=0,
        ranges=[(minute * n, minute * n + n - 1)],
    )  # fmt: skip


def progress(partition: int, mark: int | None, idle: bool = False) -> PartitionProgress:
    return PartitionProgress(Source("events", partition), 3, mark, idle)


def feed(domain: MergeDomain, records: list[Record], start: int = 0) -> list[DriftOutput]:
    out: list[DriftOutput] = []
    for offset, record in enumerate(records[start:], start):
        domain.add(record, offset)
        out += domain.close_ready()
    return out


def test_a_window_waits_for_every_partition_then_sums_their_shares() -> None:
    domain = MergeDomain(DecisionRule())
    parts = [share(p, 0) for p in range(3)]
    out = feed(domain, [*parts, progress(0, MINUTE), progress(1, MINUTE)])
    assert out == [], "partition 2 has not reported"
    out = feed(domain, [progress(2, MINUTE - 1)])
    assert out == [], "partition 2 has not passed the window's end"
    domain.add(progress(2, MINUTE), 99)
    out = domain.close_ready()
    assert len(out) == 1
    whole = WindowSketch.merged(PROFILE, [p.sketch for p in parts])
    assert out[0].value["event_count"] == whole.event_count == 150
    assert [r["partition"] for r in out[0].value["lineage"]] == [0, 1, 2]


def test_replayed_shares_are_dropped_and_late_ones_reported_in_the_next_window() -> None:
    domain = MergeDomain(DecisionRule())
    records: list[Record] = [share(p, 0) for p in range(2)]
    records += [progress(0, MINUTE), progress(1, MINUTE), progress(2, None, idle=True)]
    assert len(feed(domain, records)) == 1
    assert domain.add(share(0, 0), 10) == "duplicate"  # partition 0 had passed minute 1
    assert domain.add(share(2, 0, n=7), 11) == "late"  # partition 2 was empty then
    later = [share(p, 1) for p in range(3)] + [progress(p, 2 * MINUTE) for p in range(3)]
    out = feed(domain, later)
    assert [o.value["late_event_count"] for o in out] == [7]
    assert domain.counts.duplicates == 1 and domain.counts.late_events == 7


def test_empty_partitions_are_left_out_until_they_report_a_watermark() -> None:
    domain = MergeDomain(DecisionRule())
    out = feed(domain, [share(0, 0), progress(0, MINUTE), progress(1, None, idle=True),
                        progress(2, None)])  # fmt: skip
    assert out == [], "partition 2 is not empty, only not read yet"
    out = feed(domain, [progress(2, None, idle=True)])
    assert len(out) == 1
    assert domain.waiting_for() == [Source("events", 0)]


def test_detector_states_merge_per_detector_and_feature() -> None:
    a, b = share(0, 0), share(1, 0)
    a.change_points = [DetectorState("page_hinkley", "a", True, 2, 1000, None)]
    b.change_points = [DetectorState("page_hinkley", "a", False, 0, 400, None),
                       DetectorState("adwin", "error", False, 0, None, 0.25)]  # fmt: skip
    merged = {(s.detector, s.feature): s for s in merge_detector_states([a, b])}
    assert merged[("page_hinkley", "a")] == DetectorState("page_hinkley", "a", True, 2, 1000, None)
    assert merged[("adwin", "error")].statistic == 0.25


def _stream(seed: int) -> list[Record]:
    """Shares and progress of 3 partitions over 8 minutes, partitions interleaved."""
    rng = random.Random(seed)
    per_partition: list[list[Record]] = []
    for p in range(3):
        records: list[Record] = []
        for minute in range(8):
            records += [share(p, minute, n=rng.randint(1, 40), shift=minute / 4),
                        progress(p, (minute + 1) * MINUTE + rng.randint(0, 500))]  # fmt: skip
        per_partition.append(records)
    out: list[Record] = []
    while any(per_partition):
        queue = rng.choice([q for q in per_partition if q])
        out.append(queue.pop(0))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_restart_from_any_checkpoint_emits_each_window_once_and_the_same(seed: int) -> None:
    records = _stream(seed)
    whole = feed(MergeDomain(DecisionRule()), records)
    assert len(whole) == 8
    cut = random.Random(seed).randint(1, len(records) - 1)
    first = MergeDomain(DecisionRule())
    before = feed(first, records[:cut])
    checkpoint = first.checkpoint()
    assert checkpoint is not None
    restored = MergeDomain(DecisionRule(), MergeCheckpoint.from_json(checkpoint.to_json()))
    after = feed(restored, records, start=checkpoint.commit_offset)
    assert [o.value for o in before + after] == [o.value for o in whole]


def test_unreadable_checkpoints_are_refused() -> None:
    with pytest.raises(CheckpointError):
        MergeCheckpoint.from_json('{"f": 1, "x": 3}')
    with pytest.raises(CheckpointError):
        MergeCheckpoint.from_json("not json")


def test_a_partition_that_reported_no_watermark_is_named_as_holding_the_merge_back() -> None:
    """A partition that is read but has no watermark yet (and is not empty) stalls every
    window: the waiting gauge must name it, not report nothing."""
    domain = MergeDomain(DecisionRule())
    out = feed(domain, [share(0, 0), progress(0, MINUTE), progress(1, MINUTE),
                        progress(2, None)])  # fmt: skip
    assert out == [] and domain.merged_watermark() is None
    assert domain.waiting_for() == [Source("events", 2)]
    feed(domain, [progress(2, None, idle=True)])
    assert domain.waiting_for() == [Source("events", 0), Source("events", 1)]


def test_a_replayed_late_share_is_counted_once() -> None:
    domain = MergeDomain(DecisionRule())
    records: list[Record] = [share(p, 0) for p in range(2)]
    records += [progress(0, MINUTE), progress(1, MINUTE), progress(2, None, idle=True)]
    assert len(feed(domain, records)) == 1
    late = share(2, 0, n=7)
    assert domain.add(late, 10) == "late"  # partition 2 was empty when minute 0 merged
    domain.add(late, 11)  # its instance restarted before progress(2, ...) went out
    later = [share(p, 1) for p in range(3)] + [progress(p, 2 * MINUTE) for p in range(3)]
    out = feed(domain, later, 0)
    assert [o.value["late_event_count"] for o in out] == [7]


def test_a_counted_late_share_survives_a_restart_as_counted() -> None:
    domain = MergeDomain(DecisionRule())
    records: list[Record] = [share(p, 0) for p in range(2)]
    records += [progress(0, MINUTE), progress(1, MINUTE), progress(2, None, idle=True)]
    late = share(2, 0, n=7)
    feed(domain, [*records, late])
    checkpoint = domain.checkpoint()
    assert checkpoint is not None and checkpoint.late_shares
    restored = MergeDomain(DecisionRule(), MergeCheckpoint.from_json(checkpoint.to_json()))
    assert restored.add(late, checkpoint.next_offset) == "duplicate"
    assert restored.late == {("m", "1"): 7}


def test_checkpoints_of_many_partitions_fit_the_commit_metadata_limit() -> None:
    domain = MergeDomain(DecisionRule())
    base = 1_796_000_000_000
    feed(domain, [PartitionProgress(Source("drift-test.inference.events", p), 256,
                                    base + 1_000 * p, False) for p in range(256)])  # fmt: skip
    checkpoint = domain.checkpoint()
    assert checkpoint is not None
    assert len(checkpoint.to_json()) < 4000
    again = MergeCheckpoint.from_json(checkpoint.to_json())
    assert again == checkpoint


def test_a_revoked_domain_takes_its_gauges_with_it() -> None:
    merger = PartialsMerger(DecisionRule(), FileProfileSource(None))
    merger.assign("t.drift.partials", 7, None)
    merger.domains[("t.drift.partials", 7)].add(progress(0, MINUTE), 0)
    merger.close_ready()
    name = "driftline_drift_merge_waiting_partitions"
    assert REGISTRY.get_sample_value(name, {"partition": "7"}) == 2.0  # 1 and 2 silent
    merger.revoke("t.drift.partials", 7)
    assert REGISTRY.get_sample_value(name, {"partition": "7"}) is None
