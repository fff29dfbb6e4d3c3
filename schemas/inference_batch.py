"""Decode a batch of InferenceEvent messages straight into columns (numpy where numeric).

Why it exists: the stream processors consume hundreds of events per ``consume`` call and
bin them vectorised; they want a feature matrix, not one dict per event. Building that
dict (16 keys, a 30-entry features dict) is most of what the per-record decoder costs,
so this path skips it. A Python loop walks each record only to find where its fields
are and to slice its strings; every number (event time, latency, prediction, the
feature values) is then read for the whole batch at once by numpy from the joined
message bytes, and the key bytes of each features map are checked against their learned
layout with one vectorised comparison per layout.

Contract (proved by ``tests/unit/test_inference_batch.py`` against fastavro and against
``codec.decode`` record by record):

- row ``r`` of every column is what fastavro decodes from ``values[batch.index[r]]``;
- a value that ``codec.decode`` refuses is not in the columns: it is in ``batch.errors``
  with its position and the very :class:`DecodeError` that ``codec.decode`` raises, so
  the caller can dead-letter it; the rest of the batch decodes.

Records the fast walk does not cover (another writer schema, the registry framing,
multi-byte lengths, multi-block maps, invalid values...) go through ``codec.decode`` one
by one and land in the same columns, so the result never depends on which path ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import SINGLE_OBJECT_MAGIC, Codec, SingleObjectCodec
from schemas.exceptions import DecodeError, WrongRecordTypeError
from schemas.inference_decoder import LAYOUT_FINGERPRINT

#: Enum symbols in schema order; ``variant``/``outcome`` columns hold their indices.
VARIANTS: Final = ("baseline", "canary", "shadow")
OUTCOMES: Final = ("ok", "client_error", "server_error")
#: ``prediction_kind`` values: which branch of the ``prediction`` union was written.
PREDICTION_NULL: Final = 0
PREDICTION_DOUBLE: Final = 1
PREDICTION_LABEL: Final = 2

_HEADER: Final = SINGLE_OBJECT_MAGIC + LAYOUT_FINGERPRINT
_HEADER_LEN: Final = len(_HEADER)
_MAX_LAYOUTS: Final = 1024
_VARINT_MAX: Final = 10

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CodeArray = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class FeatureBlock:
    """The numeric features of the rows that share one feature layout (names, in order).

    :param names: feature names in the order the producer wrote them (one model's order).
    :param rows: the batch rows these belong to (ascending).
    :param values: ``(len(rows), len(names))`` float64; ``values[j, k]`` is feature
        ``names[k]`` of row ``rows[j]``.
    """

    names: tuple[str, ...]
    rows: IntArray
    values: FloatArray


@dataclass(frozen=True, slots=True)
class BadValue:
    """A message of the batch that did not decode: dead-letter ``values[index]``."""

    index: int
    error: DecodeError


MapColumn = tuple[npt.NDArray[np.bool_], list[Any], list[Any]]  # present, keys, values


@dataclass(frozen=True, slots=True)
class _Maps:
    """The two small maps as one column per entry position, over the input rows.

    Per-row dicts are built only when asked for (:attr:`InferenceBatch.probabilities`);
    the processors read fixed layouts as matrices. ``decoded`` holds the dicts of rows
    ``codec.decode`` produced; ``kept`` the input row of each batch row.
    """

    categorical: list[MapColumn]
    probabilities: list[MapColumn]
    decoded: dict[int, tuple[dict[str, str], dict[str, float]]]
    kept: IntArray

    def dicts(self, which: int) -> list[dict[str, Any]]:
        columns = self.probabilities if which else self.categorical
        n = len(self.kept)
        if not columns:
            rows: list[dict[str, Any]] = [{} for _ in range(n)]
        else:
            rows = _dicts_from_columns(columns, self.kept)
        if self.decoded:
            where = {int(i): r for r, i in enumerate(self.kept.tolist())}
            for i, maps in self.decoded.items():
                rows[where[i]] = maps[which]
        return rows

    def matrix(self, which: int, keys: Sequence[str], fill: Any, dtype: Any) -> npt.NDArray[Any]:
        columns = self.probabilities if which else self.categorical
        out = np.full((len(self.kept), len(keys)), fill, dtype=dtype)
        for present, names, values in columns:  # in entry order: a later key wins, as in Avro
            names_kept = np.array(names, dtype=object)[self.kept]
            values_kept = np.array(values, dtype=dtype)[self.kept]
            present_kept = present[self.kept]
            for k, key in enumerate(keys):
                boxed = np.empty(1, dtype=object)
                boxed[0] = key  # compared as a Python str: numpy's str scalar drops "\x00" tails
                hit = present_kept & (names_kept == boxed)
                out[hit, k] = values_kept[hit]
        if self.decoded:
            where = {int(i): r for r, i in enumerate(self.kept.tolist())}
            for i, maps in self.decoded.items():
                row = maps[which]
                out[where[i]] = [row.get(key, fill) for key in keys]
        return out


@dataclass(frozen=True)
class InferenceBatch:
    """The good InferenceEvents of a batch, one entry per row in every column.

    Numbers are numpy arrays, strings are lists, enums are int8 indices into
    :data:`VARIANTS` / :data:`OUTCOMES`. ``prediction`` holds the number of the double
    branch (NaN otherwise); ``prediction_label`` the string branch (None otherwise);
    ``prediction_kind`` says which (:data:`PREDICTION_NULL` ...). ``index[r]`` is the
    position in the input of row ``r``.
    """

    index: IntArray
    event_id: list[str]
    request_id: list[str]
    event_time: IntArray
    model_name: list[str]
    model_version: list[str]
    variant: CodeArray
    features: tuple[FeatureBlock, ...]
    prediction_kind: CodeArray
    prediction: FloatArray
    prediction_label: list[str | None]
    latency_ms: FloatArray
    outcome: CodeArray
    error_type: list[str | None]
    entity_id: list[str | None]
    trace_id: list[str | None]
    source: list[str]
    maps: _Maps = field(repr=False, compare=False)
    errors: list[BadValue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_id)

    @cached_property
    def categorical_features(self) -> list[dict[str, str]]:
        """One dict per row, built on first use (the processors use :meth:`categorical_matrix`)."""
        return self.maps.dicts(0)

    @cached_property
    def probabilities(self) -> list[dict[str, float]]:
        """One dict per row, built on first use (the processors use :meth:`probability_matrix`)."""
        return self.maps.dicts(1)

    def categorical_matrix(self, names: Sequence[str]) -> npt.NDArray[np.object_]:
        """``(n, len(names))`` object array: ``categorical_features[r].get(names[k])``."""
        return self.maps.matrix(0, names, None, object)

    def probability_matrix(self, labels: Sequence[str]) -> FloatArray:
        """``(n, len(labels))`` float64: ``probabilities[r].get(labels[k], NaN)``."""
        return self.maps.matrix(1, labels, np.nan, np.float64)

    def probability_labels(self) -> list[str]:
        """Every label some row's probabilities map has, sorted."""
        labels: set[str] = set()
        for present, keys, _ in self.maps.probabilities:
            kept = np.flatnonzero(present[self.maps.kept])
            decoded = self.maps.decoded  # their walk columns are not theirs: skip
            labels.update(keys[i] for i in self.maps.kept[kept].tolist() if i not in decoded)
        for _, probabilities in self.maps.decoded.values():
            labels.update(probabilities)
        return sorted(labels)

    def feature_matrix(self, names: Sequence[str], rows: IntArray | None = None) -> FloatArray:
        """Features ``names`` (in that order) of ``rows`` (default all); NaN where absent.

        What a processor bins against a reference profile: the producer's order and the
        reference's may differ, and an event may leave a feature out.
        """
        rows = np.arange(len(self), dtype=np.int64) if rows is None else rows
        where = np.full(len(self), -1, dtype=np.int64)
        where[rows] = np.arange(len(rows))
        wanted = tuple(names)
        out: FloatArray | None = None
        for block in self.features:
            target = where[block.rows]
            hit = target >= 0
            if not hit.any():
                continue
            placed = target[hit]
            if (
                out is None
                and block.names == wanted
                and len(placed) == len(rows)
                and bool((placed == np.arange(len(rows))).all())
            ):
                # the usual case: one layout, in the reference's order, every row (a copy)
                return block.values[hit] if not hit.all() else block.values.copy()
            if out is None:
                out = np.full((len(rows), len(names)), np.nan)
            columns = {n: k for k, n in enumerate(block.names)}
            source = np.array([columns.get(name, -1) for name in names], dtype=np.int64)
            dest = np.flatnonzero(source >= 0)
            if dest.size:
                out[placed[:, None], dest] = block.values[hit][:, source[dest]]
        return np.full((len(rows), len(names)), np.nan) if out is None else out

    def record(self, row: int) -> dict[str, Any]:
        """Row ``row`` as the dict fastavro would return (for tests and slow consumers)."""
        features: dict[str, float] = {}
        for block in self.features:
            j = int(np.searchsorted(block.rows, row))
            if j < len(block.rows) and block.rows[j] == row:
                features = dict(zip(block.names, block.values[j].tolist(), strict=True))
                break
        kind = int(self.prediction_kind[row])
        prediction: float | str | None = (
            None
            if kind == PREDICTION_NULL
            else float(self.prediction[row])
            if kind == PREDICTION_DOUBLE
            else self.prediction_label[row]
        )
        return {
            "event_id": self.event_id[row],
            "request_id": self.request_id[row],
            "event_time": int(self.event_time[row]),
            "model_name": self.model_name[row],
            "model_version": self.model_version[row],
            "variant": VARIANTS[self.variant[row]],
            "features": features,
            "categorical_features": self.categorical_features[row],
            "prediction": prediction,
            "probabilities": self.probabilities[row],
            "latency_ms": float(self.latency_ms[row]),
            "outcome": OUTCOMES[self.outcome[row]],
            "error_type": self.error_type[row],
            "entity_id": self.entity_id[row],
            "trace_id": self.trace_id[row],
            "source": self.source[row],
        }


class _Layout:
    """Byte layout of one features map: (key, double) pairs after the count, one block.

    ``mask`` selects the key bytes of the ``size``-byte region, which must equal
    ``expected``; ``values`` is a structured dtype over a ``width``-byte region whose
    fields are the doubles, in name order; ``packed`` the same fields side by side.
    """

    __slots__ = (
        "expected",
        "expected_words",
        "mask",
        "mask_words",
        "names",
        "packed",
        "size",
        "values",
        "width",
    )

    def __init__(self, names: tuple[str, ...], keys: tuple[bytes, ...]) -> None:
        self.names = names
        segment = b"".join(k + b"\x00" * 8 for k in keys)
        mask = b"".join(b"\xff" * len(k) + b"\x00" * 8 for k in keys)
        self.size = len(segment)
        self.mask = np.frombuffer(mask, np.uint8)
        self.expected = np.frombuffer(segment, np.uint8)
        # the same test 8 bytes at a time: the region rounded up to whole words, the
        # padding masked out (8x fewer comparisons than byte by byte)
        self.width = -(-self.size // 8) * 8
        pad = b"\x00" * (self.width - self.size)
        self.mask_words = np.frombuffer(mask + pad, "<u8")
        self.expected_words = np.frombuffer(segment + pad, "<u8")
        offsets = np.cumsum([len(k) + 8 for k in keys]) - 8
        fields = [f"v{k}" for k in range(len(keys))]
        self.values = np.dtype(
            {
                "names": fields,
                "formats": ["<f8"] * len(keys),
                "offsets": offsets.tolist(),
                "itemsize": self.width,
            }
        )
        self.packed = np.dtype({"names": fields, "formats": [np.float64] * len(keys)})


_layouts: dict[tuple[int, bytes], _Layout] = {}
_default_codec: SingleObjectCodec | None = None


def _learn(buf: bytes, start: int, count: int) -> _Layout | None:
    """The layout of ``count`` one-block entries at ``start`` (keys with one-byte lengths)."""
    names: list[str] = []
    keys: list[bytes] = []
    pos = start
    for _ in range(count):
        b = buf[pos]
        if b & 0x81:
            return None
        end = pos + 1 + (b >> 1)
        keys.append(buf[pos:end])
        names.append(buf[pos + 1 : end].decode())
        pos = end + 8
    if pos >= len(buf) or buf[pos] != 0 or len(set(names)) != count:
        return None  # truncated, multi-block, or duplicate keys (fastavro keeps the last)
    if len(_layouts) >= _MAX_LAYOUTS:
        _layouts.clear()
    return _Layout(tuple(names), tuple(keys))


Spans = tuple[IntArray, IntArray]  # (start, length) of one string per row


class _Walk:
    """Positions of every record of the batch, advanced field by field, all at once.

    ``ok`` turns False for a record the moment it leaves the common encoding (a
    multi-byte length, a bad union branch, bytes past its end...); from then on its
    positions are garbage (clamped into the buffer) and ``codec.decode`` decides it.
    """

    def __init__(self, data: npt.NDArray[np.uint8], starts: IntArray, ends: IntArray) -> None:
        self.data = data
        self.ends = ends
        self.limit = len(data) - len(_TAIL)
        self.separator = len(data) - 1
        self.pos = starts.copy()
        self.ok = np.ones(len(starts), dtype=bool)
        self.window8 = np.lib.stride_tricks.sliding_window_view(data, 8)

    def byte(self, offset: int = 0) -> IntArray:
        return self.data[np.minimum(self.pos + offset, self.limit)].astype(np.int64)

    def doubles_at(self, positions: IntArray) -> FloatArray:
        gathered = self.window8[np.minimum(positions, self.limit)]
        return gathered.view("<f8")[..., 0].astype(np.float64)

    def string(self, present: npt.NDArray[np.bool_] | None = None) -> Spans:
        """A string with a one-byte length (for ``present`` rows only, if given)."""
        b = self.byte()
        bad = (b & 0x81) != 0
        length = b >> 1
        if present is not None:
            bad &= present
            length = np.where(present, length, 0)
            start = self.pos + present
            self.pos = self.pos + np.where(present, 1 + length, 0)
        else:
            start = self.pos + 1
            self.pos = start + length
        self.ok &= ~bad
        return start, length

    def varint(self) -> IntArray:
        """An Avro zig-zag long of at most 10 bytes."""
        raw = self.data[np.minimum(self.pos, self.limit)[:, None] + np.arange(_VARINT_MAX)]
        last = raw < 0x80
        self.ok &= last.any(axis=1)
        size = last.argmax(axis=1) + 1
        belongs = np.arange(_VARINT_MAX) < size[:, None]
        shifts = np.arange(_VARINT_MAX, dtype=np.uint64) * np.uint64(7)
        parts = np.where(belongs, (raw.astype(np.uint64) & np.uint64(0x7F)) << shifts, 0)
        n = np.bitwise_or.reduce(parts.astype(np.uint64), axis=1)
        zigzag: npt.NDArray[np.uint64] = (n >> np.uint64(1)) ^ (np.uint64(0) - (n & np.uint64(1)))
        self.pos = self.pos + size
        result: IntArray = zigzag.view(np.int64)
        return result

    def enum(self, symbols: int) -> IntArray:
        b = self.byte()
        self.ok &= ((b & 1) == 0) & (b < 2 * symbols)
        self.pos = self.pos + 1
        return b >> 1

    def union_branch(self, branches: int) -> IntArray:
        return self.enum(branches)

    def small_map(self, string_values: bool) -> list[tuple[npt.NDArray[np.bool_], Spans, Any]]:
        """A one-block map of up to 15 entries: per entry index, (present, key, value).

        Values are string spans or double positions. Larger or sized maps leave the
        record to ``codec.decode``.
        """
        count = self.byte()
        self.ok &= ((count & 0x81) == 0) & (count < 32)
        entries = np.where(self.ok, count >> 1, 0)
        self.pos = self.pos + 1
        out: list[tuple[npt.NDArray[np.bool_], Spans, Any]] = []
        for j in range(int(entries.max(initial=0))):
            present = entries > j
            key = self.string(present)
            if string_values:
                value: Any = self.string(present)
            else:
                value = self.pos.copy()
                self.pos = self.pos + np.where(present, 8, 0)
            out.append((present, key, value))
        has = entries > 0
        self.ok &= ~has | (self.byte() == 0)
        self.pos = self.pos + has
        return out


_PAD: Final = 64
#: After the records: zeros that over-long reads land in, then the strings' separator.
_TAIL: Final = bytes(_PAD) + b"\xff"
_ASCII_LIMIT: Final = 0x80


def _texts(walk: _Walk, spans: Spans, rows: npt.NDArray[np.bool_]) -> list[Any]:
    """The strings at ``spans`` (None where not ``rows``), decoded as one buffer.

    ASCII strings decode identically as UTF-8 and as latin-1, and a byte >= 0x80 then
    never occurs inside one, so the whole column is gathered with 0xFF separators (the
    buffer's last byte, gathered after each string), decoded in one call and split. A
    string with other bytes is decoded on its own; if that fails the record is left to
    ``codec.decode`` (it reports the malformed UTF-8). Spans past the buffer (records
    the walk already gave up on) are cut short: their text is never kept.
    """
    n = len(rows)
    present = np.flatnonzero(rows)
    if not len(present):
        return [None] * n
    start = np.minimum(spans[0][present], walk.limit)
    length = np.minimum(spans[1][present], walk.limit - start)
    texts = _repeated_text(walk, start, length)
    if texts is None:
        texts = _distinct_texts(walk, present, start, length)
    if len(present) == n:
        return texts
    out = np.full(n, None, dtype=object)
    out[present] = texts
    result: list[Any] = out.tolist()
    return result


def _repeated_text(walk: _Walk, start: IntArray, length: IntArray) -> list[Any] | None:
    """One ASCII string repeated in every row (a model name, a version, a source): the
    list of it, without decoding each row; None when the rows differ."""
    size = int(length[0])
    if not (length == size).all():
        return None
    if size == 0:
        return [""] * len(start)
    data = walk.data
    last = start + (size - 1)
    if not (data[last] == data[last[0]]).all():  # a cheap first test: the last bytes
        return None
    rows = np.lib.stride_tricks.sliding_window_view(data, size)[start]
    first = rows[0]
    if (first >= _ASCII_LIMIT).any() or not (rows == first).all():
        return None
    return [first.tobytes().decode("ascii")] * len(start)


def _distinct_texts(walk: _Walk, present: IntArray, start: IntArray, length: IntArray) -> list[Any]:
    """:func:`_texts` of the ``present`` rows, gathered and decoded as one string."""
    spaced = length + 1
    ends = np.cumsum(spaced)
    index = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(start - (ends - spaced), spaced)
    index[ends - 1] = walk.separator
    gathered = walk.data[index]
    wide = gathered >= _ASCII_LIMIT
    wide[ends - 1] = False
    any_wide = bool(wide.any())
    if any_wide:  # keep 0xFF for the separators alone
        gathered = np.where(wide, np.uint8(0x3F), gathered)
    texts: list[Any] = gathered[:-1].tobytes().decode("latin-1").split("\xff")
    if any_wide:
        data = walk.data
        for j in np.unique(np.searchsorted(ends, np.flatnonzero(wide), side="right")).tolist():
            a = int(start[j])
            try:
                texts[j] = data[a : a + int(length[j])].tobytes().decode()
            except UnicodeDecodeError:
                walk.ok[present[j]] = False
    return texts


def _map_columns(
    walk: _Walk, entries: list[tuple[npt.NDArray[np.bool_], Spans, Any]], string_values: bool
) -> list[MapColumn]:
    """Keys and values of :meth:`_Walk.small_map`'s entries, checked (UTF-8, finite)."""
    columns: list[MapColumn] = []
    for present, key, value in entries:
        keys = _texts(walk, key, present)
        if string_values:
            values = _texts(walk, value, present)
        else:
            doubles = walk.doubles_at(value)
            walk.ok &= ~present | np.isfinite(doubles)
            values = doubles.tolist()
        columns.append((present, keys, values))
    return columns


def _dicts_from_columns(columns: list[MapColumn], kept: IntArray) -> list[dict[str, Any]]:
    """One dict per ``kept`` row (later keys win, as Avro)."""
    rows = kept.tolist()
    if all(present[kept].all() for present, _, _ in columns):  # every row has every entry
        pairs = zip(*(zip(keys, values, strict=True) for _, keys, values in columns), strict=True)
        if len(rows) == len(columns[0][0]):
            return [dict(row) for row in pairs]
        every = [dict(row) for row in pairs]
        return [every[r] for r in rows]
    return [{keys[r]: values[r] for present, keys, values in columns if present[r]} for r in rows]


def _features(
    walk: _Walk, values: Sequence[bytes], starts: IntArray
) -> list[tuple[tuple[str, ...], IntArray, FloatArray]]:
    """The numeric features map of every row, grouped by layout (names in order).

    Rows are grouped by entry count and (up to 16 bytes of) the first key; each group's
    layout is learned from one of its rows (or taken from the cache) and every row's
    key bytes are compared to it at once. A row that differs tries the next layout;
    one that cannot be learned is left to ``codec.decode``.
    """
    count = walk.byte()
    walk.ok &= ((count & 0x81) == 0) & (count > 0)
    walk.pos = walk.pos + 1
    map_start = walk.pos.copy()
    head = walk.data[np.minimum(map_start, walk.limit)[:, None] + np.arange(16)]
    first_key = np.arange(16) <= (head[:, :1] >> 1)  # the length byte and the key only
    words = np.ascontiguousarray(np.where(first_key, head, 0).astype(np.uint8)).view("<u8")
    signature = (
        (words[:, 0] * np.uint64(0x9E3779B97F4A7C15)) ^ words[:, 1] ^ count.astype(np.uint64)
    )
    size = np.zeros(len(count), dtype=np.int64)
    blocks: list[tuple[tuple[str, ...], IntArray, FloatArray]] = []
    candidates = np.flatnonzero(walk.ok)
    _, group_of = np.unique(signature[candidates], return_inverse=True)
    for group in range(int(group_of.max(initial=-1)) + 1):
        rows = candidates[group_of == group]
        while len(rows):
            first = int(rows[0])
            layout = _layout_of(walk, values[first], int(map_start[first] - starts[first]))
            if layout is None:
                walk.ok[first] = False
                rows = rows[1:]
                continue
            regions = _regions(walk, layout, map_start[rows])
            # the doubles sit at fixed offsets of each region: one structured cast
            # copies them side by side (not 240 byte gathers per row); then the
            # regions are masked in place to check their keys
            packed = regions.view(layout.values)[:, 0].astype(layout.packed)
            matrix = packed.view(np.float64).reshape(len(rows), len(layout.names))
            same = _matches_words(layout, regions) & (count[rows] == count[first])
            matched = rows[same]
            size[matched] = layout.size
            blocks.append(
                (layout.names, matched, matrix if len(matched) == len(rows) else matrix[same])
            )
            rows = rows[~same]
    walk.ok &= size > 0
    walk.pos = walk.pos + size
    walk.ok &= walk.byte() == 0  # the map's single block ends here
    walk.pos = walk.pos + 1
    return blocks


def _layout_of(walk: _Walk, buf: bytes, start: int) -> _Layout | None:
    """The layout of the features map whose count byte is at ``start - 1`` in ``buf``.

    From the cache when its (count, first key) is known and all its key bytes match,
    else learned; None when the map cannot be walked (damaged, multi-block...).
    """
    try:
        count = buf[start - 1]
        cache_key = (count, buf[start : start + 1 + (buf[start] >> 1)])
        layout = _layouts.get(cache_key)
        if layout is not None:
            region = np.frombuffer(buf[start : start + layout.size], np.uint8)
            if len(region) == layout.size and _matches(layout, region[None, :])[0]:
                return layout
        layout = _learn(buf, start, count >> 1)
    except (IndexError, UnicodeDecodeError):
        return None  # a damaged record: codec.decode says what is wrong
    if layout is not None:
        _layouts[cache_key] = layout
    return layout


def _regions(walk: _Walk, layout: _Layout, map_starts: IntArray) -> npt.NDArray[np.uint8]:
    """The ``layout.width`` bytes at each of ``map_starts``, one row each (row copies).

    ``width`` is ``size`` rounded up to whole 8-byte words; the buffer's padding covers
    the overhang of a record that ends with its features map.
    """
    windows = np.lib.stride_tricks.sliding_window_view(walk.data, layout.width)
    return windows[np.minimum(map_starts, len(windows) - 1)]


def _matches_words(layout: _Layout, regions: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """:func:`_matches` on ``(n, layout.width)`` regions, compared as 64-bit words.

    The regions (a copy made for this) are masked in place: their value bytes are zero
    afterwards.
    """
    words = regions.view("<u8")
    np.bitwise_and(words, layout.mask_words, out=words)
    matched: npt.NDArray[np.bool_] = (words == layout.expected_words).all(axis=1)
    return matched


def _matches(layout: _Layout, regions: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    matched: npt.NDArray[np.bool_] = ((regions & layout.mask) == layout.expected).all(axis=1)
    return matched


def _codec(codec: Codec | None) -> tuple[Codec, bool]:
    """The codec for records the walk refuses, and whether the walk may run at all."""
    global _default_codec
    if codec is None:
        if _default_codec is None:
            _default_codec = SingleObjectCodec()
        codec = _default_codec
    walk = (
        isinstance(codec, SingleObjectCodec)
        and codec.catalog.current(INFERENCE_EVENT).fingerprint == LAYOUT_FINGERPRINT
    )
    return codec, walk


def _decode_one(codec: Codec, value: bytes) -> dict[str, Any]:
    """``codec.decode`` for one InferenceEvent: the single-record path and its errors."""
    decoded = codec.decode(value)
    if decoded.record_type != INFERENCE_EVENT:
        raise WrongRecordTypeError(f"{decoded.record_type} in a batch of {INFERENCE_EVENT}s")
    return decoded.value


def decode_inference_batch(
    values: Sequence[bytes | None], codec: Codec | None = None
) -> InferenceBatch:
    """Decode message values (e.g. of one ``consume`` call) into columns.

    :param values: the message values, framed as ``codec`` frames them; None (a
        tombstone) is a bad value like any other.
    :param codec: the deployment's codec (default: single-object encoding). Only the
        single-object framing takes the vectorised walk; with the registry framing
        every record goes through ``codec.decode`` (correct, as slow as one by one).
    :returns: the good records as columns; the bad ones in ``errors``, in input order.
    """
    codec, walkable = _codec(codec)
    buffers = cast("Sequence[bytes]", values)
    try:  # map(len, ...) runs in C; a tombstone (None) has no len
        lengths = np.fromiter(map(len, buffers), dtype=np.int64, count=len(buffers))
    except TypeError:
        buffers = [v or b"" for v in values]
        lengths = np.fromiter(map(len, buffers), dtype=np.int64, count=len(buffers))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = np.frombuffer(b"".join([*buffers, _TAIL]), dtype=np.uint8)
    walk = _Walk(data, starts, ends)
    if not walkable:
        walk.ok[:] = False
    return _Columns.build(walk, buffers, starts, codec)


class _Columns:
    """Every column of the batch, read by the walk, then mended by ``codec.decode``."""

    @staticmethod
    def build(
        walk: _Walk, values: Sequence[bytes], starts: IntArray, codec: Codec
    ) -> InferenceBatch:
        header = walk.data[np.minimum(starts, walk.limit)[:, None] + np.arange(_HEADER_LEN)]
        walk.ok &= (header == np.frombuffer(_HEADER, dtype=np.uint8)).all(axis=1)
        walk.pos = walk.pos + _HEADER_LEN
        event_id = walk.string()
        request_id = walk.string()
        event_time = walk.varint()
        model_name = walk.string()
        model_version = walk.string()
        variant = walk.enum(len(VARIANTS))
        blocks = _features(walk, values, starts)
        categorical = walk.small_map(string_values=True)
        kind = walk.union_branch(3)
        prediction_pos = walk.pos.copy()
        is_double = kind == PREDICTION_DOUBLE
        walk.pos = walk.pos + np.where(is_double, 8, 0)
        label = walk.string(kind == PREDICTION_LABEL)
        probabilities = walk.small_map(string_values=False)
        latency_pos = walk.pos.copy()
        walk.pos = walk.pos + 8
        outcome = walk.enum(len(OUTCOMES))
        optional: list[tuple[npt.NDArray[np.bool_], Spans]] = []
        for _ in range(3):  # error_type, entity_id, trace_id
            present = walk.union_branch(2) == 1
            optional.append((present, walk.string(present)))
        source = walk.string()
        walk.ok &= walk.pos == walk.ends

        latency = walk.doubles_at(latency_pos)
        prediction = np.where(is_double, walk.doubles_at(prediction_pos), np.nan)
        walk.ok &= np.isfinite(latency) & (~is_double | np.isfinite(prediction))
        for _, rows, matrix in blocks:
            walk.ok[rows[~np.isfinite(matrix).all(axis=1)]] = False
        n = len(values)
        every = np.ones(n, dtype=bool)
        categorical_columns = _map_columns(walk, categorical, string_values=True)
        probability_columns = _map_columns(walk, probabilities, string_values=False)
        strings = {
            "event_id": _texts(walk, event_id, every),
            "request_id": _texts(walk, request_id, every),
            "model_name": _texts(walk, model_name, every),
            "model_version": _texts(walk, model_version, every),
            "prediction_label": _texts(walk, label, kind == PREDICTION_LABEL),
            "error_type": _texts(walk, optional[0][1], optional[0][0]),
            "entity_id": _texts(walk, optional[1][1], optional[1][0]),
            "trace_id": _texts(walk, optional[2][1], optional[2][0]),
            "source": _texts(walk, source, every),
        }
        # every check is done: rows still ok are final; the others go to the codec
        errors: dict[int, DecodeError] = {}
        decoded: dict[int, dict[str, Any]] = {}
        for i in np.flatnonzero(~walk.ok).tolist():
            try:
                decoded[i] = _decode_one(codec, values[i])
            except DecodeError as exc:
                errors[i] = exc
        feature_parts: dict[tuple[str, ...], tuple[list[IntArray], list[FloatArray]]] = {}
        for names, rows, matrix in blocks:
            still = walk.ok[rows]
            rows_parts, matrices = feature_parts.setdefault(names, ([], []))
            if still.all():  # the usual block: no copies
                rows_parts.append(rows)
                matrices.append(matrix)
            else:
                rows_parts.append(rows[still])
                matrices.append(matrix[still])
        kind_codes: CodeArray = kind.astype(np.int8)
        variant_codes: CodeArray = variant.astype(np.int8)
        outcome_codes: CodeArray = outcome.astype(np.int8)
        for i, value in decoded.items():
            for name, column in strings.items():
                column[i] = value.get(name)
            p = value["prediction"]
            k = PREDICTION_NULL if p is None else PREDICTION_LABEL if isinstance(p, str) else 1
            kind_codes[i] = k
            prediction[i] = p if k == PREDICTION_DOUBLE else np.nan
            strings["prediction_label"][i] = p if k == PREDICTION_LABEL else None
            event_time[i] = value["event_time"]
            latency[i] = value["latency_ms"]
            variant_codes[i] = VARIANTS.index(value["variant"])
            outcome_codes[i] = OUTCOMES.index(value["outcome"])
            features: dict[str, float] = value["features"]
            rows_parts, matrices = feature_parts.setdefault(tuple(features), ([], []))
            rows_parts.append(np.array([i], dtype=np.int64))
            matrices.append(np.array([list(features.values())], dtype=np.float64))
        keep = walk.ok.copy()
        keep[list(decoded)] = True
        renumber = np.cumsum(keep) - 1
        feature_blocks = []
        for names, (rows_parts, matrices) in feature_parts.items():
            if len(rows_parts) == 1:  # one block of walked rows: ascending already
                rows, matrix = rows_parts[0], matrices[0]
            else:
                rows = np.concatenate(rows_parts)
                order = np.argsort(rows, kind="stable")
                rows = rows[order]
                matrix = np.concatenate(matrices).reshape(len(rows), len(names))[order]
            if not names or not len(rows):
                continue
            feature_blocks.append(FeatureBlock(names, renumber[rows], matrix))
        kept = None if keep.all() else np.flatnonzero(keep).tolist()

        def pick(column: list[Any]) -> list[Any]:
            return column if kept is None else [column[r] for r in kept]

        return InferenceBatch(
            index=np.flatnonzero(keep).astype(np.int64),
            event_id=pick(strings["event_id"]),
            request_id=pick(strings["request_id"]),
            event_time=event_time[keep],
            model_name=pick(strings["model_name"]),
            model_version=pick(strings["model_version"]),
            variant=variant_codes[keep],
            features=tuple(feature_blocks),
            prediction_kind=kind_codes[keep],
            prediction=prediction[keep],
            prediction_label=pick(strings["prediction_label"]),
            latency_ms=latency[keep],
            outcome=outcome_codes[keep],
            error_type=pick(strings["error_type"]),
            entity_id=pick(strings["entity_id"]),
            trace_id=pick(strings["trace_id"]),
            source=pick(strings["source"]),
            maps=_Maps(
                categorical_columns,
                probability_columns,
                {i: (v["categorical_features"], v["probabilities"]) for i, v in decoded.items()},
                np.flatnonzero(keep).astype(np.int64),
            ),
            errors=[BadValue(i, errors[i]) for i in sorted(errors)],
        )


__all__ = [
    "OUTCOMES",
    "PREDICTION_DOUBLE",
    "PREDICTION_LABEL",
    "PREDICTION_NULL",
    "VARIANTS",
    "BadValue",
    "FeatureBlock",
    "InferenceBatch",
    "decode_inference_batch",
]
