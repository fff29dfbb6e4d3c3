"""Drift statistics: sketch update rate and scoring time per window (one core, medians).

Batches of 1,000 x 30 (breast-cancer-shaped) are counted into a WindowSketch; a window
of 500 events is scored against a 30-feature profile. The processor's target is
>= 100,000 events/s per core end to end, so the sketch update must be far above that.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_breast_cancer

from stream.stats import ReferenceProfile, WindowSketch, calibrate, score_window


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    data = load_breast_cancer()
    x, names = data.data, list(data.feature_names)
    profile = ReferenceProfile.build(x, names, predicted=data.target, probability=x[:, 0] / 30)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(x), 1000)
    batch, classes = x[pick], data.target[pick]
    sketch = WindowSketch(profile)
    features_only = ReferenceProfile.build(x, names)
    sketch_f = WindowSketch(features_only)
    update = _median_seconds(lambda: [sketch_f.update(batch) for _ in range(100)], 7) / 100
    update_pred = (
        _median_seconds(
            lambda: [
                sketch.update(batch, predicted=classes, probability=batch[:, 0] / 30)
                for _ in range(100)
            ],
            7,
        )
        / 100
    )
    window = WindowSketch(features_only).update(batch[:500])
    score = _median_seconds(lambda: score_window(features_only, window), 50)
    window_p = WindowSketch(profile).update(batch[:500], predicted=classes[:500])
    score_p = _median_seconds(lambda: score_window(profile, window_p), 50)
    cal = _median_seconds(lambda: calibrate(features_only, x, names, window_size=500, draws=100), 3)
    print(f"{'measure':<52} {'median':>14}")
    print(f"{'sketch update, 1,000 x 30 batch (events/s)':<52} {1000 / update:>14,.0f}")
    print(f"{'  + predicted class and probability (events/s)':<52} {1000 / update_pred:>14,.0f}")
    print(f"{'score a 500-event window, 30 features (ms)':<52} {score * 1e3:>14.2f}")
    print(f"{'  + prediction class and probability (ms)':<52} {score_p * 1e3:>14.2f}")
    print(f"{'calibrate, 100 bootstrap windows of 500 (s)':<52} {cal:>14.2f}")
    print(f"{'ratio: update rate / 100,000 target':<52} {1000 / update / 100_000:>14.1f}")


if __name__ == "__main__":
    main()
