"""Errors of the stream processors (the statistics library has its own in stats/)."""

from __future__ import annotations

from schemas.exceptions import DecodeError, DriftlineError


class StreamError(DriftlineError):
    """Base class of the errors the stream processors raise deliberately."""


class CheckpointError(StreamError):
    """A saved partition checkpoint cannot be read (corrupt, or another format)."""


class AlertRulesError(StreamError):
    """The alert rules file cannot be read or states an impossible rule (says which)."""


class UnprocessableRecordError(StreamError, DecodeError):
    """A record decoded but a processor could not use it; it goes to dead letters."""

    reason = "unprocessable"


class PartialRecordError(UnprocessableRecordError):
    """A DriftPartial decoded but its share cannot be merged (:mod:`stream.partials_codec`).

    The merge step routes it to the dead-letter topic with :attr:`reason`; the message
    names the model, version, window and source partition, so an operator knows which
    window lost which partition's share (a progress record names its partition only).
    Only its subclasses are raised.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: tuple[str, int] | None = None,
        model: str | None = None,
        version: str | None = None,
        window: tuple[str, int, int] | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.model = model
        self.version = version
        #: (kind, start_ms, end_ms) of the window the share belongs to.
        self.window = window
        parts = []
        if model is not None:
            parts.append(f"model {model!r} version {version!r}")
        if window is not None:
            kind, start, end = window
            parts.append(f"{kind} window [{start}, {end})")
        if source is not None:
            parts.append(f"from {source[0]}[{source[1]}]")
        subject = ", ".join(parts) or "DriftPartial"
        super().__init__(f"{subject}: {problem}")


class PartialValueError(PartialRecordError):
    """A value the partial cannot hold: negative or inconsistent counts (bin counts that
    do not add up to the present values), a kind without its part, an unknown window
    kind. Merged, it would corrupt the window of every other partition."""

    reason = "invalid_value"


class UnknownProfileError(PartialRecordError):
    """No reference profile for the partial's (model, version): its counts cannot be read."""

    reason = "unknown_model"


class ReferenceMismatchError(PartialRecordError):
    """The partial's sketch was counted on another reference than the profile's now."""

    reason = "reference_mismatch"


class PartialShapeError(PartialRecordError):
    """The partial's counts do not fit the profile's grid (features, bins, categories)."""

    reason = "shape_mismatch"
