"""Drift statistics: reference profiles, mergeable window sketches, tests, decisions.

A pure library (numpy and scipy; no Kafka, no I/O beyond reading and writing a profile
file) shared by the drift processor, serving's ``POST /drift/detect``, retraining and the
HTML report, so every one of them gets the same numbers for the same data.
``docs/drift.md`` explains each statistic, the decision rule and calibration.
"""

from __future__ import annotations

from stream.stats.calibration import Calibration, calibrate
from stream.stats.decision import DecisionRule
from stream.stats.detect import default_rule, detect
from stream.stats.exceptions import (
    BatchShapeError,
    DriftStatsError,
    NoSharedFeaturesError,
    ProfileError,
    SketchMismatchError,
)
from stream.stats.hysteresis import Hysteresis
from stream.stats.profile import ReferenceProfile
from stream.stats.result import FeatureDrift, WindowDrift
from stream.stats.scoring import score_window
from stream.stats.sketch import WindowSketch

__all__ = [
    "BatchShapeError",
    "Calibration",
    "DecisionRule",
    "DriftStatsError",
    "FeatureDrift",
    "Hysteresis",
    "NoSharedFeaturesError",
    "ProfileError",
    "ReferenceProfile",
    "SketchMismatchError",
    "WindowDrift",
    "WindowSketch",
    "calibrate",
    "default_rule",
    "detect",
    "score_window",
]
