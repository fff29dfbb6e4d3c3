"""A bounded on-disk spool of encoded events, for when the broker is away.

Records are appended to segment files (``000000000001.spool``, ...) as
``[4-byte key length][4-byte value length][key][value]``. The publisher replays whole
segments oldest first and deletes one only when every record in it was acknowledged by
Kafka or spooled again, so a crash in between can duplicate (never lose) events:
consumers de-duplicate on ``event_id``. A segment cut short by a crash is read up to its
last whole record.

The spool is bounded by ``max_bytes``. A record that does not fit is refused
(:meth:`DiskSpool.append` returns False); the publisher counts it as dropped and logs it.
Nothing is written with fsync: the spool survives a process crash, not a power cut.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import BinaryIO, Final

_HEADER: Final = struct.Struct(">II")
SUFFIX: Final = ".spool"


class DiskSpool:
    """Append-only segments under ``directory``, at most ``max_bytes`` in total; thread-safe.

    :param directory: created if missing; segments left by an earlier run are kept and
        replayed first.
    :param max_bytes: bound of all segments together; 0 disables the spool.
    :param segment_bytes: a segment is closed (and becomes replayable) past this size.
    """

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 4 * 1024 * 1024):
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._writer: BinaryIO | None = None
        self._writer_path: Path | None = None
        self._writer_records = 0
        directory.mkdir(parents=True, exist_ok=True)
        existing = sorted(directory.glob(f"*{SUFFIX}"))
        self._next = int(existing[-1].stem) + 1 if existing else 1
        self._bytes = sum(p.stat().st_size for p in existing)

    @property
    def size_bytes(self) -> int:
        """Bytes on disk in every segment, open or closed."""
        return self._bytes

    def append(self, key: bytes, value: bytes) -> bool:
        """Write one record; False (nothing written) when it would exceed ``max_bytes``."""
        size = _HEADER.size + len(key) + len(value)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return False
            if self._writer is None:
                self._writer_path = self.directory / f"{self._next:012d}{SUFFIX}"
                self._next += 1
                self._writer = self._writer_path.open("ab")
                self._writer_records = 0
            self._writer.write(_HEADER.pack(len(key), len(value)) + key + value)
            self._writer.flush()
            self._bytes += size
            self._writer_records += 1
            if self._writer.tell() >= self.segment_bytes:
                self._close_writer()
            return True

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._writer_path = None

    def has_records(self) -> bool:
        """True while any segment (including the one being written) holds records."""
        return self._bytes > 0

    def take_oldest(self) -> tuple[Path, list[tuple[bytes, bytes]]] | None:
        """The oldest segment and its records (the open one is closed first); None if empty."""
        with self._lock:
            segments = sorted(self.directory.glob(f"*{SUFFIX}"))
            if not segments:
                return None
            oldest = segments[0]
            if oldest == self._writer_path:
                self._close_writer()
            return oldest, read_segment(oldest)

    def remove(self, segment: Path) -> None:
        """Delete a fully replayed segment and stop counting its bytes."""
        with self._lock:
            try:
                size = segment.stat().st_size
                segment.unlink()
            except FileNotFoundError:
                return
            self._bytes = max(0, self._bytes - size)

    def close(self) -> None:
        """Close the segment being written (its records stay for the next run)."""
        with self._lock:
            self._close_writer()


def read_segment(path: Path) -> list[tuple[bytes, bytes]]:
    """Every whole record in ``path``; a torn tail (crash mid-write) is ignored."""
    data = path.read_bytes()
    records: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        key_len, value_len = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + key_len + value_len
        if end > len(data):
            break
        start = pos + _HEADER.size
        records.append((data[start : start + key_len], data[start + key_len : end]))
        pos = end
    return records
