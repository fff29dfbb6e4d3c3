"""Errors of the serving component."""

from __future__ import annotations

from schemas.exceptions import DriftlineError


class ServingError(DriftlineError):
    """Base of every error serving raises on purpose."""


class ClientInputError(ServingError):
    """A request is wrong; the caller gets a 4xx that says exactly what and where.

    :param status: HTTP status (400, 404, 413, 422).
    :param code: short stable code; also the ``error_type`` of the InferenceEvent.
    :param message: what is wrong, for a person.
    :param location: where in the request, as a path such as ``features['mean radius']``.
    """

    def __init__(self, status: int, code: str, message: str, location: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.location = location
        super().__init__(f"{code}: {message}" + (f" (at {location})" if location else ""))
