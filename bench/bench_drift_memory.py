"""RSS of the drift processor over 5 million events: flat, not growing with events.

State is bounded by models x features x bins x (open windows + closed windows kept for
sliding windows, at most sliding / tumbling per model version) plus the online
detectors, fixed per model version, so after warm-up RSS must not grow with events.
Sliding windows are on (the defaults: 15 min every minute).
Events go straight into :meth:`DriftProcessor.process` (no Kafka): a few real decoded
batches of breast-cancer events are reused with advancing event times, so the run
stays well under a minute. RSS (psutil) is sampled every 500,000 events, after
closing ready windows.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from schemas.inference_batch import InferenceBatch, decode_inference_batch
from stream.drift_processor import DriftProcessor
from stream.profiles import FileProfileSource
from stream.runtime.window_plan import WindowPlan, WindowSizes
from tests.integration.test_drift_processor_support import breast_cancer, event, write_profiles

TOTAL = 5_000_000
BATCH = 5_000
SAMPLE_EVERY = 500_000
MODELS = ["m0", "m1"]
EVENTS_PER_S = 2_000  # event-time rate per model: a 60 s window holds 120,000 events


def _templates(rng: np.random.Generator) -> list[InferenceBatch]:
    """One decoded batch per model, rows drawn from the breast-cancer data."""
    x, names = breast_cancer()
    out = []
    for model in MODELS:
        rows = x[rng.integers(0, len(x), size=BATCH)]
        out.append(
            decode_inference_batch([event(model, 0, r, names, i) for i, r in enumerate(rows)])
        )
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        profiles = write_profiles(Path(tmp), MODELS)
        processor = DriftProcessor(
            FileProfileSource(profiles), window_ms=60_000, lateness_ms=5_000,
            plan=WindowPlan(WindowSizes(60_000, 900_000, 60_000)),
        )  # fmt: skip
        templates = _templates(rng)
        process = psutil.Process()
        offsets = np.arange(BATCH, dtype=np.int64)
        step_ms = 1000 * BATCH // EVENTS_PER_S
        rows: list[tuple[int, float, int, int, int, float]] = []
        sent = closed = 0
        start = time.perf_counter()
        for b in range(TOTAL // BATCH):
            template = templates[b % len(templates)]
            t0 = (b // len(templates)) * step_ms
            times = t0 + np.arange(BATCH, dtype=np.int64) * step_ms // BATCH
            batch = dataclasses.replace(template, event_time=times)
            processor.process("events", 0, batch, offsets + b * BATCH)
            closed += len(processor.close_ready())
            sent += BATCH
            if sent % SAMPLE_EVERY == 0:
                open_windows = sum(len(w.open) for w in processor.partitions.values())
                kept = sum(len(k) for w in processor.partitions.values() for k in w.kept.values())
                rss = process.memory_info().rss / 2**20
                rows.append((sent, rss, open_windows, kept, closed, time.perf_counter() - start))
    base = rows[0][1]
    print(
        f"{'events':>10} {'RSS MiB':>9} {'vs 500k':>8} {'open windows':>13} {'kept':>5} "
        f"{'outputs':>8} {'s':>6}"
    )
    for sent, rss, open_windows, kept, n_closed, elapsed in rows:
        delta = rss - base
        print(
            f"{sent:>10,} {rss:>9.1f} {delta:>+8.1f} {open_windows:>13} {kept:>5} "
            f"{n_closed:>8} {elapsed:>6.1f}"
        )
    growth = rows[-1][1] - base
    print(f"RSS growth from 500k to {TOTAL:,} events: {growth:+.1f} MiB "
          f"({TOTAL / rows[-1][5]:,.0f} events/s through the pure path)")  # fmt: skip


if __name__ == "__main__":
    main()
