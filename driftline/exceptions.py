"""Errors of the launcher and CLI."""

from __future__ import annotations

from schemas.exceptions import DriftlineError


class LauncherError(DriftlineError):
    """The local stack could not be started."""


class BinaryNotFoundError(LauncherError):
    """A server binary (broker, redis-server) is not installed."""


class ServiceUnhealthyError(LauncherError):
    """A started service did not become healthy in time, or exited early."""


class PortReservationError(LauncherError):
    """No free port could be reserved for a service (see :mod:`driftline.ports`)."""


class ReplayInputError(DriftlineError):
    """A replay's input is unusable: unreadable file, wrong columns, unknown scenario."""


class ValidateError(DriftlineError):
    """A validation check cannot go on (e.g. the served model is not one it can feed)."""


class BackupError(DriftlineError):
    """A backup could not be written, or a restore could not proceed; the message says why."""


class CorruptBackupError(BackupError):
    """A backup directory fails its manifest: missing, unreadable, or a checksum differs."""


class RestoreTargetNotEmptyError(BackupError):
    """The stack to restore into already holds state (``--force`` replaces it)."""
