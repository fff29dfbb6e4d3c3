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
