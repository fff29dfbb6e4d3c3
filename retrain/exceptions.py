"""Errors of the retrain component."""

from __future__ import annotations

from schemas.exceptions import DriftlineError


class RetrainError(DriftlineError):
    """Base of every error retrain raises on purpose."""


class ReplayError(RetrainError):
    """A training set cannot be rebuilt from its recorded lineage."""


class LockLostError(RetrainError):
    """The model's training lock expired or was taken while this worker trained."""


class LockBusyError(RetrainError):
    """Another worker holds the model's training lock; the request is retried later."""
