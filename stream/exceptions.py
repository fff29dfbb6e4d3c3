"""Errors of the stream processors (the statistics library has its own in stats/)."""

from __future__ import annotations

from schemas.exceptions import DriftlineError


class StreamError(DriftlineError):
    """Base class of the errors the stream processors raise deliberately."""


class CheckpointError(StreamError):
    """A saved partition checkpoint cannot be read (corrupt, or another format)."""


class AlertRulesError(StreamError):
    """The alert rules file cannot be read or states an impossible rule (says which)."""
