"""Online change-point detectors: cost per update and false alarms, side by side.

Backs the decision "Page-Hinkley on standardised block means, not KSWIN"
(docs/decisions.md): the same N(0, 1) no-drift stream goes through river's KSWIN,
Page-Hinkley with river's defaults, and Page-Hinkley with Driftline's parameters
(``stream.detectors.PageHinkleyParams``); a second stream with a 3-sd step shows the
chosen detector still reacts. Per-update cost is the median of 3 timed passes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table
from river.base import DriftDetector
from river.drift import KSWIN, PageHinkley

from stream.detectors import PageHinkleyParams

UPDATES = 20_000
KSWIN_UPDATES = 5_000  # KSWIN is ~300x slower; fewer updates keep the run short
REPEATS = 3
STEP_AT = 1_000


def _run(make: Callable[[], DriftDetector], values: np.ndarray) -> tuple[float, int, int | None]:
    """(seconds per update, change points, index of the first change point)."""
    timings = []
    changes, first = 0, None
    for _ in range(REPEATS):
        detector = make()
        changes, first = 0, None
        started = time.perf_counter()
        for i, x in enumerate(values):
            detector.update(float(x))
            if detector.drift_detected:
                changes += 1
                first = i if first is None else first
        timings.append((time.perf_counter() - started) / len(values))
    return statistics.median(timings), changes, first


def main() -> None:
    rng = np.random.default_rng(20261125)
    null = rng.standard_normal(UPDATES)
    step = np.concatenate([rng.standard_normal(STEP_AT), rng.standard_normal(STEP_AT) + 3.0])
    chosen = PageHinkleyParams()
    rows: list[tuple[str, Callable[[], DriftDetector], np.ndarray]] = [
        ("KSWIN (river defaults)", KSWIN, null[:KSWIN_UPDATES]),
        ("Page-Hinkley (river defaults)", PageHinkley, null),
        ("Page-Hinkley (Driftline)", chosen.make, null),
    ]
    table = Table(title="Online detectors on N(0, 1) block means (no drift)")
    for column in ("detector", "updates", "µs per update", "false change points"):
        table.add_column(column)
    cost: dict[str, float] = {}
    for name, make, values in rows:
        per_update, changes, _ = _run(make, values)
        cost[name] = per_update
        table.add_row(name, f"{len(values):,}", f"{per_update * 1e6:.2f}", str(changes))
    console = Console()
    console.print(table)
    _, _, first = _run(chosen.make, step)
    delay = None if first is None else first - STEP_AT
    console.print(f"Driftline's Page-Hinkley on a 3-sd step at update {STEP_AT}: "
                  f"first change point {delay} updates (blocks) after the step")  # fmt: skip
    ratio = cost["KSWIN (river defaults)"] / cost["Page-Hinkley (Driftline)"]
    console.print(f"KSWIN costs {ratio:.0f}x Driftline's Page-Hinkley per update")


if __name__ == "__main__":
    main()
