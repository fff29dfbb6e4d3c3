"""Reference profiles for ``POST /drift/detect``, by dataset id, built with ``stream.stats``.

Any id of the dataset registry (:mod:`serving.datasets`) is a reference: the built-ins
``training``, ``validation`` and ``reference`` (what the champion was trained on), and
every registered dataset. Profiles are built on first use with the same library the
stream processors use, so a detect call and a processor window give the same numbers,
and cached; a registered dataset replaced on disk is profiled again (the cache key
includes the file's modification time and size). A ``target`` column is the label and
never profiled as a feature.
"""

from __future__ import annotations

import threading

import numpy as np

from schemas.breast_cancer import load_split
from serving.datasets import BUILT_IN, DatasetStore
from stream.stats import ReferenceProfile

#: Column holding the label; never a feature of a reference.
TARGET = "target"


class ReferenceRegistry:
    """Reference profiles by dataset id; thread-safe lazy construction."""

    def __init__(self, datasets: DatasetStore | None = None) -> None:
        self.datasets = datasets
        self._lock = threading.Lock()
        self._built_in: dict[str, ReferenceProfile] = {}
        self._registered: dict[str, tuple[tuple[int, int], ReferenceProfile]] = {}

    def ids(self) -> list[str]:
        """Every known reference id."""
        return self.datasets.ids() if self.datasets is not None else sorted(BUILT_IN)

    def get(self, reference_id: str) -> ReferenceProfile | None:
        """The profile of ``reference_id``; None when the id is unknown."""
        if reference_id in BUILT_IN:
            with self._lock:
                if not self._built_in:
                    self._built_in = _built_in()
                return self._built_in[reference_id]
        return self._registered_profile(reference_id)

    def _registered_profile(self, reference_id: str) -> ReferenceProfile | None:
        if self.datasets is None or reference_id not in self.datasets.registered():
            return None
        path = self.datasets.path(reference_id)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._registered.get(reference_id)
            if cached is not None and cached[0] == key:
                return cached[1]
        frame = self.datasets.load(reference_id)
        if frame is None:
            return None
        names = [c for c in frame.columns if c != TARGET]
        profile = ReferenceProfile.build(
            frame[names].to_numpy(dtype=np.float64),
            names,
            metadata={"dataset": reference_id},
        )
        with self._lock:
            self._registered[reference_id] = (key, profile)
        return profile


def _built_in() -> dict[str, ReferenceProfile]:
    split = load_split()
    names = list(split.features)
    training = ReferenceProfile.build(split.x_train, names, metadata={"dataset": "training"})
    validation = ReferenceProfile.build(
        split.x_validation, names, metadata={"dataset": "validation"}
    )
    return {"training": training, "reference": training, "validation": validation}
