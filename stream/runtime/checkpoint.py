"""What a restart needs besides the committed offset, to replay a partition exactly.

Offsets are committed at the first event of the oldest still-open window, so a restart
re-reads the open windows' events and rebuilds them. Between that offset and the last
consumed one there may also be events of windows that already closed (and were
emitted) and late events (already counted); replaying those naively would emit a
window twice with different contents. The checkpoint says where the replayed part ends
(``next_offset``), each model's newest event time then (so closed windows stay closed),
the late events not yet reported in a DriftScore, and each model's newest event time
*before* the replay starts (``seeds``): with it the replay re-judges every event exactly
as it was judged the first time, so closed windows that sliding windows still need are
rebuilt with the same content (``stream/runtime/windows.py``).

It travels as the offset-commit metadata (kept with the offset by Kafka's group
coordinator, atomically) and, because the embedded broker drops that metadata
(measured), also as a local file: :class:`FileCheckpointStore`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from stream.exceptions import CheckpointError

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One partition's replay state at a commit.

    :param commit_offset: the offset committed with it (where replay starts).
    :param next_offset: one past the last offset processed before the commit.
    :param watermarks: model -> newest event time seen (ms), before lateness.
    :param late: ``"model\\x1fversion"`` -> ``[[target window start, count], ...]``.
    :param seeds: model -> its newest event time before its first replayed window's first
        event (None: no event before); None for checkpoints written before sliding
        windows (closed windows then cannot be rebuilt).
    """

    commit_offset: int
    next_offset: int
    watermarks: dict[str, int] = field(default_factory=dict)
    late: dict[str, list[list[int]]] = field(default_factory=dict)
    seeds: dict[str, int | None] | None = None

    def to_json(self) -> str:
        """Compact JSON (offset-commit metadata is limited to 4 KB by default)."""
        body = {"f": FORMAT, "x": self.commit_offset, "c": self.next_offset,
                "w": self.watermarks, "l": self.late}  # fmt: skip
        if self.seeds is not None:
            body["s"] = self.seeds
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse :meth:`to_json`.

        :raises CheckpointError: not a checkpoint of this format.
        """
        try:
            body = json.loads(text)
            if body.get("f") != FORMAT:
                raise CheckpointError(f"checkpoint format {body.get('f')} is not {FORMAT}")
            return cls(
                commit_offset=int(body["x"]),
                next_offset=int(body["c"]),
                watermarks={str(k): int(v) for k, v in body["w"].items()},
                late={str(k): [[int(a), int(b)] for a, b in v] for k, v in body["l"].items()},
                seeds=None
                if body.get("s") is None
                else {str(k): None if v is None else int(v) for k, v in body["s"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"unreadable checkpoint: {exc}") from exc


class Committable(Protocol):
    """A checkpoint a :class:`JsonCheckpointStore` can keep."""

    @property
    def commit_offset(self) -> int: ...
    def to_json(self) -> str: ...


C = TypeVar("C", bound=Committable)


class JsonCheckpointStore(Generic[C]):
    """The last two checkpoints of each partition in a local directory.

    Two, because the file is written before the offset commit: after a crash between
    the two, the committed offset still matches the previous checkpoint. It is written
    after the outputs are acknowledged: a checkpoint with the same commit offset (which
    stays put while sliding windows need its events) replaces the previous one, and
    must not name windows whose output a crash lost.

    :param parse: reads one checkpoint back (raises :class:`CheckpointError` if it
        cannot).
    """

    def __init__(self, root: Path, group: str, parse: Callable[[str], C]) -> None:
        self.root = root / group
        self.parse = parse

    def _path(self, topic: str, partition: int) -> Path:
        return self.root / f"{topic}-{partition}.json"

    def save(self, topic: str, partition: int, checkpoint: C) -> None:
        """Keep ``checkpoint`` and the one before it (atomic replace)."""
        path = self._path(topic, partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = [c for c in self._read(path) if c.commit_offset != checkpoint.commit_offset]
        lines = [c.to_json() for c in [*kept[-1:], checkpoint]]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines))
        os.replace(tmp, path)

    def load(self, topic: str, partition: int, committed_offset: int) -> C | None:
        """The checkpoint saved with ``committed_offset``, if there is one."""
        for checkpoint in reversed(self._read(self._path(topic, partition))):
            if checkpoint.commit_offset == committed_offset:
                return checkpoint
        return None

    def _read(self, path: Path) -> list[C]:
        if not path.exists():
            return []
        out: list[C] = []
        for line in path.read_text().splitlines():
            try:
                out.append(self.parse(line))
            except CheckpointError:
                continue
        return out


class FileCheckpointStore(JsonCheckpointStore[Checkpoint]):
    """The windowed processors' checkpoints (:class:`Checkpoint`) in a local directory."""

    def __init__(self, root: Path, group: str) -> None:
        super().__init__(root, group, Checkpoint.from_json)
