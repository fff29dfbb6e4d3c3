"""Named reference datasets for ``POST /drift/detect``, profiled with ``stream.stats``.

Built in: ``training`` (the rows the baseline is fitted on), ``validation`` (the fixed
held-out split) and ``reference`` (what the champion was trained on: the training
split). Profiles are built once, on first use, with the same library the stream
processors use, so a detect call and a processor window give the same numbers.
Registering other datasets (``POST /references``) is not built yet.
"""

from __future__ import annotations

import threading

from serving.training import load_split
from stream.stats import ReferenceProfile

BUILT_IN = ("reference", "training", "validation")


class ReferenceRegistry:
    """Reference profiles by id; thread-safe lazy construction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[str, ReferenceProfile] = {}

    def ids(self) -> list[str]:
        """Every known reference id."""
        return sorted(BUILT_IN)

    def get(self, reference_id: str) -> ReferenceProfile | None:
        """The profile of ``reference_id``; None when the id is unknown."""
        if reference_id not in BUILT_IN:
            return None
        with self._lock:
            if not self._profiles:
                self._profiles = _built_in()
            return self._profiles[reference_id]


def _built_in() -> dict[str, ReferenceProfile]:
    split = load_split()
    names = list(split.features)
    training = ReferenceProfile.build(split.x_train, names, metadata={"dataset": "training"})
    validation = ReferenceProfile.build(
        split.x_validation, names, metadata={"dataset": "validation"}
    )
    return {"training": training, "reference": training, "validation": validation}
