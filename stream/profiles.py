"""Where the drift processor gets each model version's reference profile.

:class:`ProfileSource` is the seam: today profiles come from files
(:class:`FileProfileSource`); a source reading the profile artifact stored with the
model version in MLflow implements the same one method. Switching a model's version
switches its reference because windows are keyed by (model, version).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from stream.stats import ProfileError, ReferenceProfile

log = logging.getLogger(__name__)


class ProfileSource(Protocol):
    """Finds the reference profile of a model version."""

    def get(self, model: str, version: str) -> ReferenceProfile | None:
        """The profile of ``model`` at ``version``, or None when there is none."""
        ...


class FileProfileSource:
    """Profiles from ``DRIFTLINE_DRIFT_REFERENCE_PATH``: one file, or a directory.

    - a file (profile JSON, or a training-data CSV) is every model's reference;
    - a directory is searched for ``<model>/<version>.json``, then ``<model>.json``.

    Answers (including "none") are cached: a file added later is seen after a restart.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cache: dict[tuple[str, str], ReferenceProfile | None] = {}
        self._single: ReferenceProfile | None = None
        if path is not None and path.is_file():
            self._single = _load(path)

    def get(self, model: str, version: str) -> ReferenceProfile | None:
        """See :class:`ProfileSource`."""
        if self._single is not None:
            return self._single
        key = (model, version)
        if key not in self._cache:
            self._cache[key] = self._find(model, version)
        return self._cache[key]

    def _find(self, model: str, version: str) -> ReferenceProfile | None:
        if self.path is None or not self.path.is_dir():
            return None
        for candidate in (self.path / model / f"{version}.json", self.path / f"{model}.json"):
            if candidate.is_file():
                try:
                    return _load(candidate)
                except ProfileError as exc:
                    log.error("reference profile for %s/%s unusable: %s", model, version, exc)
                    return None
        return None


def _load(path: Path) -> ReferenceProfile:
    if path.suffix.lower() == ".csv":
        return ReferenceProfile.from_csv(path)
    return ReferenceProfile.load(path)
