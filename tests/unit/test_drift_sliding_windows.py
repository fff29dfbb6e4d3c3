"""Sliding windows assembled from closed tumbling windows (pure, no Kafka).

A sliding window must hold exactly the counted (not late) events of its (model, version)
whose time is in its span, whatever the batch cuts, and a restart from any checkpoint
must re-emit nothing and lose nothing: the closed windows it needs are rebuilt from the
replay.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from stream.runtime.checkpoint import Checkpoint
from stream.runtime.window_plan import WindowPlan, WindowSizes
from stream.runtime.windows import ClosedWindow, PartitionWindows, SlidingWindow

SIZE, LATE = 60_000, 30_000
PLAN = WindowPlan(
    WindowSizes(SIZE, 4 * SIZE, SIZE),
    {"b": WindowSizes(30_000, 180_000, 60_000), "c": WindowSizes(SIZE)},
)
Event = tuple[str, str, int]  # model, version, event time (ms); offset = position
Summary = list[tuple[str, int, str, str, int, list[int], int]]


def _windows(checkpoint: Checkpoint | None = None) -> PartitionWindows[list[int]]:
    return PartitionWindows(PLAN, LATE, lambda key: [], checkpoint)


Output = ClosedWindow[list[int]] | SlidingWindow[list[int]]


def _feed(
    w: PartitionWindows[list[int]], events: list[Event], first_offset: int = 0
) -> list[Output]:
    offsets = np.arange(first_offset, first_offset + len(events), dtype=np.int64)
    got = w.ingest(
        [e[0] for e in events],
        [e[1] for e in events],
        np.array([e[2] for e in events], dtype=np.int64),
        offsets,
    )
    for window, rows in got.groups:
        window.state.extend(offsets[rows].tolist())
    closed: list[Output] = list(w.close_ready())
    return closed + list(w.sliding_ready())


def _summary(closed: list[Output]) -> Summary:
    """(kind, start, model, version, end, offsets, late) of every output, sorted."""
    out: Summary = []
    for c in closed:
        k = c.key
        if isinstance(c, SlidingWindow):
            offsets = sorted(itertools.chain.from_iterable(c.parts))
            assert c.events == len(offsets)
            out.append(("sliding", k.start_ms, k.model, k.version, c.end_ms, offsets,
                        c.late_event_count))  # fmt: skip
        else:
            out.append(("tumbling", k.start_ms, k.model, k.version, c.end_ms, sorted(c.state),
                        c.late_event_count))  # fmt: skip
    return sorted(out)


def _run(events: list[Event], cuts: list[int]) -> Summary:
    w = _windows()
    out: list[Output] = []
    for a, b in itertools.pairwise([0, *cuts, len(events)]):
        out += _feed(w, events[a:b], a)
    return _summary(out)


def _stream(seed: int, n: int = 900) -> list[Event]:
    """Three models (b: 30 s windows, c: no sliding), two versions, jitter, a few very late."""
    rng = np.random.default_rng(seed)
    base = np.arange(n) * 1_000 + rng.integers(-50_000, 1, n)
    times = np.where(rng.random(n) < 0.03, base - 200_000, base)
    models = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    versions = np.where(np.arange(n) < n // 2, "1", rng.choice(["1", "2"], n))
    return [(str(m), str(v), int(t)) for m, v, t in zip(models, versions, times, strict=True)]


def _reference(events: list[Event]) -> Summary:
    """Sliding windows by the rules, one event at a time (no vectorisation, no merge)."""
    newest: dict[str, int] = {}
    counted: list[tuple[int, Event]] = []
    for offset, (model, version, t) in enumerate(events):
        size = PLAN.sizes(model).tumbling_ms
        before = newest.get(model)
        if before is None or t - t % size + size > before - LATE:
            counted.append((offset, (model, version, t)))
        newest[model] = t if before is None else max(before, t)
    out: Summary = []
    pairs = {(m, v) for _, (m, v, _) in counted}
    for model, version in sorted(pairs):
        sizes = PLAN.sizes(model)
        if not sizes.sliding_ms:
            continue
        mine = [(o, t) for o, (m, v, t) in counted if (m, v) == (model, version)]
        slide = sizes.slide_ms
        first = min(t for _, t in mine) // slide * slide  # every end on the slide...
        for end in range(first, newest[model] - LATE + 1, slide):  # ...the watermark reached
            start = end - sizes.sliding_ms
            offsets = sorted(o for o, t in mine if start <= t < end)
            if offsets:  # a span without a counted event has no sliding window
                out.append(("sliding", start, model, version, end, offsets, 0))
    return sorted(out)


def _sliding(summary: Summary) -> Summary:
    return [(*s[:6], 0) for s in summary if s[0] == "sliding"]


@settings(max_examples=40, deadline=None)
@given(seed=hst.integers(0, 10_000), cuts=hst.lists(hst.integers(1, 899), max_size=30))
def test_sliding_window_holds_exactly_the_counted_events_of_its_span(
    seed: int, cuts: list[int]
) -> None:
    events = _stream(seed)
    got = _run(events, sorted(set(cuts)))
    assert _sliding(got) == _reference(events)
    assert got == _run(events, [])  # batch cuts change nothing


def test_sliding_windows_follow_each_models_plan() -> None:
    events = [("a", "1", t * 1_000) for t in range(0, 600, 7)]
    events += [("b", "1", t * 1_000) for t in range(0, 600, 11)]
    events += [("c", "1", t * 1_000) for t in range(0, 600, 13)]
    events.sort(key=lambda e: e[2])
    got = _run(events, [])
    by = {(s[0], s[2]): [(s[1], s[4]) for s in got if (s[0], s[2]) == (s[0], s[2])] for s in got}
    sliding_a = [(s[1], s[4]) for s in got if s[:1] == ("sliding",) and s[2] == "a"]
    sliding_b = [(s[1], s[4]) for s in got if s[:1] == ("sliding",) and s[2] == "b"]
    assert ("sliding", "c") not in by  # c has no sliding windows
    assert sliding_a == [(e - 240_000, e) for e in range(60_000, 540_001, 60_000)]
    assert sliding_b == [(e - 180_000, e) for e in range(60_000, 540_001, 60_000)]
    tumbling_b = [s[1] for s in got if s[:1] == ("tumbling",) and s[2] == "b"]
    assert tumbling_b == list(range(0, 540_000, 30_000))


def test_kept_windows_are_bounded_by_the_sliding_length() -> None:
    w = _windows()
    for minute in range(200):
        _feed(w, [("a", "1", minute * SIZE + 1), ("b", "1", minute * SIZE + 1)], minute * 2)
        assert len(w.kept.get(("a", "1"), [])) <= PLAN.default.parts
        assert len(w.kept.get(("b", "1"), [])) <= PLAN.sizes("b").parts
    assert ("c", "1") not in w.kept


@pytest.mark.parametrize("seed", range(6))
def test_restart_from_any_checkpoint_rebuilds_sliding_windows(seed: int) -> None:
    events = _stream(seed)
    expected = _run(events, [])
    rng = np.random.default_rng(seed)
    crash = int(rng.integers(150, len(events) - 150))
    w = _windows()
    before = _summary(_feed(w, events[:crash]))
    checkpoint = w.checkpoint()
    assert checkpoint is not None and checkpoint.seeds is not None
    restarted = _windows(Checkpoint.from_json(checkpoint.to_json()))
    x = checkpoint.commit_offset
    after = _summary(_feed(restarted, events[x:], x))
    assert sorted(before + after) == expected


@pytest.mark.parametrize("seed", range(4))
def test_second_restart_in_the_middle_of_a_replay(seed: int) -> None:
    events = _stream(seed)
    expected = _run(events, [])
    crash = 500
    w = _windows()
    before = _summary(_feed(w, events[:crash]))
    first = w.checkpoint()
    assert first is not None
    x = first.commit_offset
    replaying = _windows(first)
    middle = _summary(_feed(replaying, events[x : x + 20], x))  # part of the replay only
    second = replaying.checkpoint()
    assert second is not None and second.next_offset == first.next_offset
    y = second.commit_offset
    again = _windows(Checkpoint.from_json(second.to_json()))
    after = _summary(_feed(again, events[y:], y))
    assert middle == []
    assert sorted(before + after) == expected


def test_checkpoint_without_seeds_warms_sliding_windows_up() -> None:
    """A checkpoint written before sliding windows cannot rebuild closed windows: sliding
    windows reaching before it are not produced (never produced incomplete)."""
    events = [("a", "1", t * 1_000) for t in range(0, 900, 5)]
    expected = _run(events, [])
    w = _windows()
    _feed(w, events[:100])  # up to t = 495 s: watermark 465 s, window [420 s, 480 s) open
    new = w.checkpoint()
    assert new is not None
    old = Checkpoint(new.commit_offset, new.next_offset, new.watermarks, new.late)
    after = _summary(_feed(_windows(old), events[old.commit_offset :], old.commit_offset))
    sliding = [s for s in after if s[0] == "sliding"]
    assert [s[1] for s in sliding] == list(range(420_000, 600_001, 60_000))
    assert all(s in expected for s in after)  # what is produced is complete


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((60_000, 100_000, 60_000), "whole number of tumbling windows"),
        ((60_000, 900_000, 90_000), "slide .* positive whole number"),
        ((60_000, 900_000, 0), "slide .* positive whole number"),
        ((60_000, 120_000, 180_000), "must not exceed the sliding window"),
        ((0, 0, 0), "tumbling window must be > 0"),
        ((60_000, -1, 0), "sliding window must be >= 0"),
    ],
)
def test_window_sizes_are_validated(sizes: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowSizes(*sizes)


def test_sparse_traffic_still_gets_a_sliding_window_every_slide() -> None:
    """A model with events in every other minute, then silent for 10 minutes: a sliding
    window at every minute whose 4-minute span holds events, none for an empty span."""
    events = [("a", "1", m * SIZE + 1_000) for m in (0, 2, 4, 16, 18)]
    events.append(("a", "1", 25 * SIZE))  # the watermark passes minute 24
    got = [s for s in _run(events, []) if s[0] == "sliding"]
    ends = [s[4] // SIZE for s in got]
    assert ends == [1, 2, 3, 4, 5, 6, 7, 8, 17, 18, 19, 20, 21, 22]
    assert [len(s[5]) for s in got] == [1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 1, 1]
    tumbling = [s[1] // SIZE for s in _run(events, []) if s[0] == "tumbling"]
    assert tumbling == [0, 2, 4, 16, 18]
