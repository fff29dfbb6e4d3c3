"""Event-time windows, watermark and late events of the drift processor (pure, no Kafka)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from stream.runtime.checkpoint import Checkpoint, FileCheckpointStore
from stream.runtime.windows import ClosedWindow, PartitionWindows, WindowKey

SIZE, LATE = 60_000, 30_000
Event = tuple[str, str, int]  # model, version, event time (ms); offset = position


def _windows(checkpoint: Checkpoint | None = None) -> PartitionWindows[list[int]]:
    return PartitionWindows(SIZE, LATE, lambda key: [], checkpoint)


def _feed(
    w: PartitionWindows[list[int]], events: list[Event], first_offset: int = 0
) -> list[ClosedWindow[list[int]]]:
    offsets = np.arange(first_offset, first_offset + len(events), dtype=np.int64)
    got = w.ingest(
        [e[0] for e in events],
        [e[1] for e in events],
        np.array([e[2] for e in events], dtype=np.int64),
        offsets,
    )
    for window, rows in got.groups:
        window.state.extend(offsets[rows].tolist())
    return w.close_ready()


def _summary(closed: list[ClosedWindow[list[int]]]) -> list[tuple[WindowKey, list[int], int]]:
    """Closed windows by key (the order across models follows batch ends; per key it is
    window order)."""
    return sorted((c.key, sorted(c.state), c.late_event_count) for c in closed)


def _run(events: list[Event], cuts: list[int]) -> list[tuple[WindowKey, list[int], int]]:
    w = _windows()
    out: list[ClosedWindow[list[int]]] = []
    bounds = [0, *cuts, len(events)]
    for a, b in itertools.pairwise(bounds):
        out += _feed(w, events[a:b], a)
    return _summary(out)


def _disordered_stream(seed: int, n: int = 600) -> list[Event]:
    """Two models, two versions, event times with jitter up to 50 s and a few very late."""
    rng = np.random.default_rng(seed)
    base = np.arange(n) * 1_000 + rng.integers(-50_000, 1, n)
    very_late = rng.random(n) < 0.03
    times = np.where(very_late, base - 200_000, base)
    models = rng.choice(["a", "b"], n)
    versions = rng.choice(["1", "2"], n)
    return [(str(m), str(v), int(t)) for m, v, t in zip(models, versions, times, strict=True)]


def test_window_closes_when_the_watermark_passes_its_end() -> None:
    w = _windows()
    assert _feed(w, [("a", "1", 1_000), ("a", "1", 59_999), ("a", "1", 60_000)]) == []
    assert _feed(w, [("a", "1", 89_999)], 3) == []  # watermark 59_999 < end 60_000
    closed = _feed(w, [("a", "1", 90_000)], 4)  # watermark 60_000 reaches the end
    assert _summary(closed) == [(WindowKey(0, "a", "1"), [0, 1], 0)]
    assert closed[0].end_ms == 60_000 and closed[0].events == 2
    assert (closed[0].first_offset, closed[0].last_offset) == (0, 1)


def test_late_event_is_counted_in_the_next_record_not_in_a_window() -> None:
    w = _windows()
    first = _feed(w, [("a", "1", 10_000), ("a", "1", 70_000), ("a", "1", 95_000)])
    assert _summary(first) == [(WindowKey(0, "a", "1"), [0], 0)]
    assert _feed(w, [("a", "1", 20_000), ("a", "1", 21_000)], 3) == []  # late: window 0 closed
    closed = _feed(w, [("a", "1", 200_000)], 5)
    assert _summary(closed) == [(WindowKey(60_000, "a", "1"), [1, 2], 2)]


def test_watermark_is_per_model() -> None:
    w = _windows()
    _feed(w, [("a", "1", 10_000), ("b", "1", 500_000)])
    assert w.watermark("a") == 10_000 - LATE
    assert _feed(w, [("a", "1", 20_000)], 2) == []  # b's time does not close a's window
    assert sorted(k.model for k in w.open) == ["a", "b"]


def test_versions_have_their_own_windows() -> None:
    w = _windows()
    closed = _feed(w, [("a", "1", 1_000), ("a", "2", 2_000), ("a", "2", 200_000)])
    assert _summary(closed) == [
        (WindowKey(0, "a", "1"), [0], 0),
        (WindowKey(0, "a", "2"), [1], 0),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_result_does_not_depend_on_batch_boundaries(seed: int) -> None:
    events = _disordered_stream(seed)
    rng = np.random.default_rng(100 + seed)
    whole = _run(events, [])
    assert sum(late for _, _, late in whole) > 0, "the stream should exercise late events"
    for _ in range(3):
        cuts = sorted(rng.choice(np.arange(1, len(events)), size=25, replace=False).tolist())
        assert _run(events, cuts) == whole
    assert _run(events, list(range(1, len(events)))) == whole  # one event per batch


@pytest.mark.parametrize("seed", range(5))
def test_restart_from_checkpoint_emits_each_window_once_with_the_same_content(seed: int) -> None:
    events = _disordered_stream(seed)
    expected = _run(events, [])
    rng = np.random.default_rng(seed)
    crash = int(rng.integers(100, len(events) - 100))
    w = _windows()
    before = _summary(_feed(w, events[:crash]))
    checkpoint = w.checkpoint()
    assert checkpoint is not None
    restarted = _windows(Checkpoint.from_json(checkpoint.to_json()))
    x = checkpoint.commit_offset
    assert x <= crash
    after = _summary(_feed(restarted, events[x:], x))
    assert sorted(before + after) == expected


def test_checkpoint_is_the_oldest_open_windows_first_offset() -> None:
    w = _windows()
    _feed(w, [("a", "1", 10_000), ("a", "1", 70_000), ("a", "1", 95_000), ("a", "1", 96_000)])
    checkpoint = w.checkpoint()
    assert checkpoint is not None
    assert (checkpoint.commit_offset, checkpoint.next_offset) == (1, 4)
    assert checkpoint.watermarks == {"a": 96_000}


def test_file_store_keeps_the_checkpoint_matching_the_committed_offset(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path, "g")
    old, new = Checkpoint(5, 9, {"a": 1}), Checkpoint(8, 12, {"a": 2}, {"a\x1f1": [[0, 3]]})
    store.save("t", 0, old)
    store.save("t", 0, new)
    assert store.load("t", 0, 5) == old  # crash between file write and commit
    assert store.load("t", 0, 8) == new
    assert store.load("t", 0, 7) is None
    assert store.load("t", 1, 5) is None


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="tumbling window must be > 0"):
        PartitionWindows(0, 0, lambda key: [])
    with pytest.raises(ValueError, match="lateness_ms"):
        PartitionWindows(SIZE, -1, lambda key: [])
