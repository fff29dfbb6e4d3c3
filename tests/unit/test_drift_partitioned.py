"""Partitioned drift processing: partials of many partitions merged into DriftScores.

Two properties, on a stream of two models spread over six partitions by request id,
slightly out of order, with late events and the online detectors on:

- **instances do not matter:** one processor owning all six partitions and three
  processors owning two each (other batch cuts, their outputs interleaved at random
  on the partials topic, then encoded and decoded as on Kafka) give identical
  DriftScores, field for field, each window once;
- **partitions do not matter** (for a stream without late events): the merged
  DriftScores equal those of the keyed processor counting every event on one
  partition, except where the record names partitions (lineage) and the detectors,
  which watch each partition's sub-stream.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.catalog import DRIFT_PARTIAL, DRIFT_SCORE
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.drift_output import DriftOutput
from stream.drift_processor import DriftProcessor
from stream.feedback_join import FeedbackJoin, Label
from stream.merge import MergeDomain
from stream.partials import PartitionProgress, WindowPartial
from stream.partials_codec import record_to_partial
from stream.partitioned import PartialOutput, PartitionedDriftProcessor, ProgressOutput
from stream.profiles import FileProfileSource
from stream.runtime.window_plan import WindowPlan, WindowSizes
from stream.runtime.windows import WindowKey
from stream.stats import DecisionRule, ReferenceProfile

TOPIC = "events"
PARTITIONS = 6
SIZE = 60_000
LATENESS = 5_000
PLAN = WindowPlan(WindowSizes(SIZE, 5 * SIZE, 2 * SIZE))
CODEC = SingleObjectCodec()
RNG = np.random.default_rng(11)
REF = RNG.normal(size=(3000, 2))
PROFILE = ReferenceProfile.build(
    REF, ["a", "b"], predicted=(REF[:, 0] > 0).astype(float), probability=RNG.random(3000), bins=8
)
Outputs = list[PartialOutput | ProgressOutput]


def _stream(n: int, *, late: bool, seed: int) -> list[tuple[int, bytes]]:
    """(partition, encoded event) in produce order: two models, drift after 8 minutes,
    times jittered within the lateness (and a few far behind when ``late``), and a tail
    event per partition far ahead so every window closes."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 14 * SIZE, n)) + rng.integers(0, LATENESS // 2, n)
    if late:
        behind = rng.random(n) < 0.02
        times = np.where(behind, np.maximum(times - 3 * SIZE, 0), times)
    x = rng.normal(size=(n, 2)) + np.where(times[:, None] > 8 * SIZE, 0.8, 0.0)
    prob = rng.random(n)
    out: list[tuple[int, bytes]] = []
    for i in range(n + PARTITIONS):
        tail = i >= n
        request = f"r{i}"
        partition = i - n if tail else int(rng.integers(0, PARTITIONS))  # "hash" of request id
        t = 30 * SIZE if tail else int(times[i])
        j = min(i, n - 1)
        value = CODEC.encode(
            "InferenceEvent",
            {"event_id": request, "request_id": request, "event_time": t,
             "model_name": "m" if tail or i % 3 else "n", "model_version": "1",
             "variant": "baseline", "features": {"a": float(x[j, 0]), "b": float(x[j, 1])},
             "prediction": float(x[j, 0] > 0),
             "probabilities": {"0": 1 - float(prob[j]), "1": float(prob[j])},
             "latency_ms": 1.0, "outcome": "ok", "source": "test"},
        )  # fmt: skip
        out.append((partition, value))
    return out


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.001
        return self.t


def _instance(profiles: Path) -> PartitionedDriftProcessor:
    inner = DriftProcessor(
        FileProfileSource(profiles), window_ms=SIZE, lateness_ms=LATENESS, plan=PLAN,
        detector_block_size=40, partitioned=True,
    )  # fmt: skip
    return PartitionedDriftProcessor(
        inner,
        partition_count=lambda topic: PARTITIONS,
        is_empty=lambda topic, partition: False,
        progress_interval_s=0.0,
        clock=_Clock(),
    )


def _run_instance(
    stream: list[tuple[int, bytes]], owned: list[int], profiles: Path, seed: int
) -> Outputs:
    """Feed an instance its partitions' events in batches of random sizes, one
    partition at a time (as a consume call returns them), closing after each batch."""
    rng = random.Random(seed)
    offsets: dict[int, int] = {}
    queues: dict[int, list[tuple[int, bytes]]] = {p: [] for p in owned}
    for p, value in stream:
        offset = offsets[p] = offsets.get(p, -1) + 1
        if p in queues:
            queues[p].append((offset, value))
    processor = _instance(profiles)
    out: Outputs = []
    while any(queues.values()):
        p = rng.choice([p for p in owned if queues[p]])
        k = rng.randint(1, 90)
        take, queues[p] = queues[p][:k], queues[p][k:]
        batch = decode_inference_batch([v for _, v in take])
        processor.process(TOPIC, p, batch, np.array([o for o, _ in take], dtype=np.int64))
        out += processor.close_ready()
    return out


def _merge(instances: list[Outputs], profiles: Path, seed: int) -> list[DriftOutput]:
    """Interleave the instances' outputs at random (each instance's order kept, as the
    idempotent producer keeps it per partition), encode and decode each record as the
    topic would, and feed one merge domain."""
    rng = random.Random(seed)
    source = FileProfileSource(profiles)
    domain = MergeDomain(DecisionRule())
    queues = [list(outputs) for outputs in instances]
    out: list[DriftOutput] = []
    offset = 0
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        record = CODEC.decode(CODEC.encode(DRIFT_PARTIAL, queue.pop(0).value)).value
        item = record_to_partial(record, source)
        assert isinstance(item, WindowPartial | PartitionProgress)
        domain.add(item, offset)
        offset += 1
        out += domain.close_ready()
    assert not domain.pending, "every window was merged"
    return out


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("profiles")
    PROFILE.save(root / "m.json")
    PROFILE.save(root / "n.json")
    return root


def _by_key(outputs: list[DriftOutput]) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    keyed = {o.natural_key: o.value for o in outputs}
    assert len(keyed) == len(outputs), "a window was emitted twice"
    for value in keyed.values():  # and each is a valid DriftScore
        CODEC.encode(DRIFT_SCORE, value)
    return keyed


def test_one_instance_and_three_instances_give_identical_drift_scores(profiles: Path) -> None:
    stream = _stream(2400, late=True, seed=1)
    one = _merge([_run_instance(stream, list(range(PARTITIONS)), profiles, seed=2)], profiles, 3)
    three = _merge(
        [_run_instance(stream, [p, p + 3], profiles, seed=10 + p) for p in range(3)], profiles, 4
    )
    by_one, by_three = _by_key(one), _by_key(three)
    assert by_one == by_three
    kinds = {k[2] for k in by_one}
    assert kinds == {"tumbling", "sliding"}
    assert sum(v["late_event_count"] for v in by_one.values() if v["window_kind"] == "tumbling")
    assert any(v["change_points"] for v in by_one.values())
    tumbling = [v for v in by_one.values() if v["window_kind"] == "tumbling"]
    assert PARTITIONS in {len({r["partition"] for r in v["lineage"]}) for v in tumbling}


def test_merged_scores_equal_the_keyed_processor_on_one_partition(profiles: Path) -> None:
    stream = _stream(2400, late=False, seed=5)
    merged = _by_key(
        _merge([_run_instance(stream, list(range(PARTITIONS)), profiles, seed=6)], profiles, 7)
    )
    keyed = DriftProcessor(
        FileProfileSource(profiles), window_ms=SIZE, lateness_ms=LATENESS, plan=PLAN,
        detector_block_size=0,
    )  # fmt: skip
    whole: list[DriftOutput] = []
    values = [v for _, v in stream]
    for a, b in itertools.pairwise([*range(0, len(values), 250), len(values)]):
        keyed.process(TOPIC, 0, decode_inference_batch(values[a:b]), np.arange(a, b))
        whole += keyed.close_ready()
    expected = _by_key(whole)
    # the tail events close windows of "m" only on the keyed side; "n" keeps its last ones
    assert set(expected) <= set(merged)
    assert len(expected) > 20
    for key, value in expected.items():
        mine = merged[key]
        for field in ("lineage", "change_points"):
            mine, value = {**mine, field: None}, {**value, field: None}
        assert mine == value, key


def test_a_partition_of_unprofiled_events_still_moves_its_watermark(profiles: Path) -> None:
    processor = _instance(profiles)

    def event(i: int, model: str, t: int) -> bytes:
        return CODEC.encode(
            "InferenceEvent",
            {"event_id": f"e{i}", "request_id": f"e{i}", "event_time": t, "model_name": model,
             "model_version": "1", "variant": "baseline", "features": {"a": 0.1, "b": 0.2},
             "prediction": 1.0, "probabilities": {"0": 0.4, "1": 0.6}, "latency_ms": 1.0,
             "outcome": "ok", "source": "test"},
        )  # fmt: skip

    for p in range(PARTITIONS):
        model = "unprofiled" if p == 1 else "m"
        values = [event(i, model, t) for i, t in enumerate((1_000, 2 * SIZE + LATENESS))]
        processor.process(TOPIC, p, decode_inference_batch(values), np.arange(2, dtype=np.int64))
    marks = {
        o.progress.source.partition: o.progress.watermark_ms
        for o in processor.close_ready()
        if isinstance(o, ProgressOutput)
    }
    assert marks[1] == marks[0] == 2 * SIZE
    assert not processor.inner.partitions[(TOPIC, 1)].open, "unprofiled events count nowhere"


def test_the_feedback_join_holds_a_prediction_until_its_own_partition_passes_it(
    profiles: Path,
) -> None:
    """Partitioned: a model's watermark differs per partition. Held predictions must
    expire against the slowest partition holding the model (every model's windows are
    open there), not against whichever partition the instance happened to list last."""
    processor = DriftProcessor(
        FileProfileSource(profiles), window_ms=SIZE, lateness_ms=LATENESS, plan=PLAN,
        detector_block_size=0, partitioned=True, join=FeedbackJoin(SIZE // 2),
    )  # fmt: skip

    def event(request: str, t: int) -> bytes:
        return CODEC.encode(
            "InferenceEvent",
            {"event_id": request, "request_id": request, "event_time": t, "model_name": "m",
             "model_version": "1", "variant": "baseline", "features": {"a": 0.1, "b": 0.2},
             "prediction": 1.0, "probabilities": {"0": 0.4, "1": 0.6}, "latency_ms": 1.0,
             "outcome": "ok", "source": "test"},
        )  # fmt: skip

    slow = decode_inference_batch([event("slow", 1_000)])
    processor.process(TOPIC, 1, slow, np.arange(1, dtype=np.int64))
    fast = decode_inference_batch([event("fast", 1_000), event("ahead", 4 * SIZE)])
    processor.process(TOPIC, 0, fast, np.arange(2, dtype=np.int64))
    processor.feedback([Label("f1", "slow", "m", 1.0, 2_000)])
    tally = processor.performance[(TOPIC, 1)][WindowKey(0, "m", "1")].variants["baseline"]
    assert (tally.labelled, tally.correct) == (1, 1), "partition 1's window [0, 1 min) is open"
