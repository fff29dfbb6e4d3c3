"""Errors of the drift-statistics library, all rooted at :class:`DriftlineError`.

Callers (the drift processor, serving's ``/drift/detect``) catch :class:`DriftStatsError`
to turn a bad request or a bad profile into a clear answer instead of a stack trace.
"""

from __future__ import annotations

from schemas.exceptions import DriftlineError


class DriftStatsError(DriftlineError):
    """Base class of the errors raised by :mod:`stream.stats`."""


class ProfileError(DriftStatsError):
    """A reference profile cannot be built or read (no values, bad file, wrong format)."""


class SketchMismatchError(DriftStatsError):
    """Two sketches (or a sketch and a profile) were built on different references."""


class NoSharedFeaturesError(DriftStatsError):
    """The current data and the reference have no feature in common: nothing to compare."""

    def __init__(self, reference: list[str], current: list[str]) -> None:
        self.reference = reference
        self.current = current
        super().__init__(
            f"no feature in common between the reference ({', '.join(reference) or 'none'}) "
            f"and the current data ({', '.join(current) or 'none'})"
        )


class BatchShapeError(DriftStatsError):
    """A batch does not have the shape the profile expects (columns, lengths)."""
