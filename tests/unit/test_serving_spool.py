"""The disk spool: bounded, replayable oldest first, survives a restart and a torn write."""

from __future__ import annotations

from pathlib import Path

from serving.publishing.spool import DiskSpool, read_segment


def test_records_come_back_oldest_segment_first(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000, segment_bytes=100)
    records = [(b"model", bytes([i]) * 40) for i in range(6)]
    assert all(spool.append(k, v) for k, v in records)
    seen = []
    while (taken := spool.take_oldest()) is not None:
        path, got = taken
        seen.extend(got)
        spool.remove(path)
    assert seen == records
    assert not spool.has_records() and spool.size_bytes == 0


def test_the_bound_refuses_what_does_not_fit(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=100)
    assert spool.append(b"k", b"x" * 50)  # 8-byte header + 1 + 50 = 59 bytes
    assert not spool.append(b"k", b"y" * 50)  # 118 > 100: refused, nothing written
    assert spool.size_bytes == 59
    taken = spool.take_oldest()
    assert taken is not None and taken[1] == [(b"k", b"x" * 50)]
    spool.remove(taken[0])
    assert spool.append(b"k", b"y" * 50)  # room again once replayed


def test_a_new_spool_finds_what_an_earlier_run_left(tmp_path: Path) -> None:
    first = DiskSpool(tmp_path, max_bytes=10_000)
    first.append(b"a", b"1")
    first.close()
    second = DiskSpool(tmp_path, max_bytes=10_000)
    assert second.has_records() and second.size_bytes == first.size_bytes
    second.append(b"b", b"2")  # goes to a new segment, after the old one
    taken = second.take_oldest()
    assert taken is not None and taken[1] == [(b"a", b"1")]


def test_a_torn_tail_is_ignored(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000)
    spool.append(b"k", b"whole")
    spool.close()
    (segment,) = tmp_path.glob("*.spool")
    with segment.open("ab") as f:
        f.write(b"\x00\x00\x00\x01\x00\x00\x00\x09kpartial")  # value cut short by a crash
    assert read_segment(segment) == [(b"k", b"whole")]
