"""The drift fixtures ``make train`` writes: training rows, and a documented shift of held-out rows.

``data/sample/drift_reference.csv`` is the training split; ``data/sample/drift_current.csv``
is the validation split with a documented, seeded shift (tumours look 30 % larger, more
texture), reproducible to the bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from schemas.breast_cancer import SPLIT_SEED, TARGET, load_split

#: The documented shift that turns held-out rows into ``drift_current.csv``: these size
#: features are multiplied by SIZE_FACTOR (tumours look 30 % larger), and
#: ``mean texture`` gets TEXTURE_SHIFT_SD of its own standard deviation added, plus
#: seeded Gaussian noise of NOISE_SD standard deviations on both.
SIZE_FEATURES: Final = (
    "mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area",
)  # fmt: skip
SIZE_FACTOR: Final = 1.3
TEXTURE_SHIFT_SD: Final = 1.0
NOISE_SD: Final = 0.05


def drift_fixtures() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): the training rows, and held-out rows with the documented shift.

    Both carry the 30 features and ``target``. ``current`` is the validation split with
    SIZE_FEATURES scaled by SIZE_FACTOR and ``mean texture`` moved up by TEXTURE_SHIFT_SD
    standard deviations (of the training data), plus seeded noise: reproducible to the bit.
    """
    split = load_split()
    names = list(split.features)
    reference = pd.DataFrame(split.x_train, columns=names)
    reference[TARGET] = split.y_train
    current = pd.DataFrame(split.x_validation.copy(), columns=names)
    rng = np.random.default_rng(SPLIT_SEED)
    sd = reference[names].std(ddof=0)
    for name in SIZE_FEATURES:
        noise = rng.normal(0.0, NOISE_SD * sd[name], len(current))
        current[name] = current[name] * SIZE_FACTOR + noise
    texture = "mean texture"
    noise = rng.normal(0.0, NOISE_SD * sd[texture], len(current))
    current[texture] = current[texture] + TEXTURE_SHIFT_SD * sd[texture] + noise
    current[TARGET] = split.y_validation
    return reference, current


def write_drift_fixtures(reference_path: Path, current_path: Path) -> tuple[int, int]:
    """Write both fixture CSVs (6 significant digits); return their row counts."""
    reference, current = drift_fixtures()
    for frame, path in ((reference, reference_path), (current, current_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, float_format="%.6g")
    return len(reference), len(current)
