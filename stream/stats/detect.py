"""Batch drift detection in one call: what ``POST /drift/detect`` and the report use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from stream.stats.decision import DecisionRule
from stream.stats.layout import to_profile_columns
from stream.stats.profile import ReferenceProfile
from stream.stats.result import WindowDrift
from stream.stats.scoring import score_window
from stream.stats.sketch import WindowSketch


def detect(
    profile: ReferenceProfile,
    data: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    predicted: npt.ArrayLike | None = None,
    probability: npt.ArrayLike | None = None,
    rule: DecisionRule | None = None,
) -> WindowDrift:
    """Compare current rows with a reference profile and return the window result.

    :param data: ``(n, len(feature_names))`` current rows; NaN/None = missing value.
    :param feature_names: column names of ``data``. Reference features absent here are
        listed in ``missing_features`` and not scored; columns unknown to the reference
        are listed in ``unknown_features`` and ignored. At least one must be shared
        (else :class:`~stream.stats.exceptions.NoSharedFeaturesError`).
    :param rule: decision thresholds; default: the profile's calibrated rule if it has a
        calibration, else :class:`DecisionRule`'s defaults.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> profile = ReferenceProfile.build(rng.normal(size=(2000, 3)), ["a", "b", "c"])
    >>> shifted = rng.normal(size=(500, 3)) + [0, 0, 2]
    >>> result = detect(profile, shifted, ["a", "b", "c"])
    >>> [f.meta.name for f in result.data.features if f.data.is_drift]
    ['c']
    >>> round(result.data.drift_score, 3), result.data.is_drift
    (0.333, True)
    """
    columns = to_profile_columns(profile, data, feature_names)
    sketch = WindowSketch(profile).update(
        columns.numeric,
        categorical=columns.categorical,
        predicted=predicted,
        probability=probability,
    )
    return score_window(
        profile,
        sketch,
        rule or default_rule(profile),
        missing_features=columns.missing_features,
        unknown_features=columns.unknown_features,
    )


def default_rule(profile: ReferenceProfile) -> DecisionRule:
    """The profile's calibrated rule when it carries a calibration, else the defaults."""
    if profile.calibration is None:
        return DecisionRule()
    from stream.stats.calibration import Calibration

    return Calibration.model_validate(profile.calibration).rule()
