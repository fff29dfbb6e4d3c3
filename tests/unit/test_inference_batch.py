"""The columnar batch decoder gives fastavro's records and codec.decode's errors, row by row."""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from fastavro import schemaless_reader
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Codec, Decoded, SingleObjectCodec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import REASON, DeadLetterRouter
from schemas.exceptions import (
    BadMagicError,
    DecodeError,
    InvalidRecordError,
    MalformedRecordError,
    TruncatedRecordError,
    UnknownSchemaError,
    WrongRecordTypeError,
)
from schemas.inference_batch import (
    OUTCOMES,
    PREDICTION_DOUBLE,
    VARIANTS,
    InferenceBatch,
    decode_inference_batch,
)
from tests.records_factory import FEATURE_NAMES, inference_event, samples
from tests.unit.test_dead_letters import FakeMessage, RecordingProducer
from tests.unit.test_inference_decoder import CURRENT, _same, names, records

CODEC = SingleObjectCodec()


class _OpaqueCodec:
    """The same codec behind a wrapper: the batch decoder cannot walk, only call decode."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def encode(self, record_type: str, value: Mapping[str, Any], *, check: bool = True) -> bytes:
        return self.inner.encode(record_type, value, check=check)

    def decode(self, data: bytes) -> Decoded:
        return self.inner.decode(data)


def _frame(record: dict[str, Any]) -> bytes:
    return CODEC.encode("InferenceEvent", record, check=False)


def _fastavro(framed: bytes) -> Any:
    return schemaless_reader(io.BytesIO(framed[10:]), CURRENT.parsed, None)


def _assert_like_one_by_one(values: Sequence[bytes | None], batch: InferenceBatch) -> None:
    """Every value: an error equal to codec.decode's, or a row equal to fastavro's record."""
    errors = {bad.index: bad.error for bad in batch.errors}
    rows = {int(i): row for row, i in enumerate(batch.index)}
    assert len(rows) == len(batch) and not set(rows) & set(errors)
    assert list(batch.index) == sorted(batch.index)
    for i, value in enumerate(values):
        try:
            decoded = CODEC.decode(value or b"")
        except DecodeError as exc:
            assert i in errors, f"value {i}: codec says {exc!r}, batch decoded it"
            # Same class, hence same dead-letter reason. Not the same message: the
            # single-record decoder's wording for a truncation depends on its layout cache.
            assert type(errors[i]) is type(exc) and errors[i].reason == exc.reason
            continue
        if decoded.record_type != "InferenceEvent":
            assert isinstance(errors[i], WrongRecordTypeError)
            continue
        assert i in rows, f"value {i}: codec decoded it, batch says {errors.get(i)!r}"
        assert _same(batch.record(rows[i]), _fastavro(value or b""))


def _assert_columns_consistent(batch: InferenceBatch) -> None:
    """Shapes and dtypes the processors rely on; every row in at most one feature block."""
    n = len(batch)
    for column in (batch.event_time, batch.latency_ms, batch.prediction, batch.variant):
        assert column.shape == (n,)
    assert batch.event_time.dtype == np.int64 and batch.latency_ms.dtype == np.float64
    seen: list[int] = []
    for block in batch.features:
        assert block.values.shape == (len(block.rows), len(block.names))
        assert block.values.dtype == np.float64 and len(block.names) > 0
        assert list(block.rows) == sorted(block.rows)
        seen.extend(block.rows.tolist())
    assert len(seen) == len(set(seen))


def _assert_map_matrices_match_dicts(batch: InferenceBatch) -> None:
    """The fixed-layout accessors say what the per-row dicts (checked against fastavro) say."""
    labels = batch.probability_labels()
    assert labels == sorted({k for p in batch.probabilities for k in p})
    probabilities = batch.probability_matrix([*labels, "absent-label"])
    for r, row in enumerate(batch.probabilities):
        expected = [row.get(label, math.nan) for label in [*labels, "absent-label"]]
        assert np.array_equal(probabilities[r], expected, equal_nan=True)
    names = [*sorted({k for c in batch.categorical_features for k in c}), "absent-name"]
    categorical = batch.categorical_matrix(names)
    assert categorical.shape == (len(batch), len(names))
    for r, labels_of_row in enumerate(batch.categorical_features):
        assert categorical[r].tolist() == [labels_of_row.get(n) for n in names]


finite = st.floats(allow_nan=False, allow_infinity=False)


def _finite(number: Any, instead: float) -> Any:
    return instead if isinstance(number, float) and not math.isfinite(number) else number


def _made_finite(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every non-finite number replaced: one the codec accepts."""
    return record | {
        "features": {k: _finite(v, 0.0) for k, v in record["features"].items()},
        "probabilities": {k: _finite(v, 0.5) for k, v in record["probabilities"].items()},
        "latency_ms": _finite(record["latency_ms"], 1.0),
        "prediction": _finite(record["prediction"], 0.0),
    }


finite_records = records.map(_made_finite)


@st.composite
def batches(draw: st.DrawFn) -> list[bytes | None]:
    """Records that share feature layouts (as one model's do), some of them corrupted."""
    layouts = draw(st.lists(st.lists(names, unique=True, min_size=1, max_size=40), max_size=3))
    out: list[bytes | None] = []
    for _ in range(draw(st.integers(0, 10))):
        record = draw(st.one_of(finite_records, records))
        shared: bool = draw(st.booleans())
        if layouts and shared:
            keys = draw(st.sampled_from(layouts))
            record["features"] = {k: draw(finite) for k in keys}
        framed = _frame(record)
        damage = draw(st.sampled_from(["none", "none", "none", "cut", "flip", "extra", "null"]))
        if damage == "cut":
            framed = framed[: draw(st.integers(0, len(framed) - 1))]
        elif damage == "flip":
            at = draw(st.integers(0, len(framed) - 1))
            framed = framed[:at] + bytes([draw(st.integers(0, 255))]) + framed[at + 1 :]
        elif damage == "extra":
            framed += draw(st.binary(min_size=1, max_size=3))
        out.append(None if damage == "null" else framed)
    return out


@settings(max_examples=300, deadline=None)
@given(batches())
def test_batch_equals_fastavro_and_codec_record_by_record(values: list[bytes | None]) -> None:
    batch = decode_inference_batch(values)
    _assert_like_one_by_one(values, batch)
    _assert_columns_consistent(batch)
    _assert_map_matrices_match_dicts(batch)
    # the same batch through codec.decode alone (no walk) gives the same columns
    opaque = decode_inference_batch(values, _OpaqueCodec(CODEC))
    assert list(opaque.index) == list(batch.index)
    assert all(_same(opaque.record(r), batch.record(r)) for r in range(len(batch)))


def test_columns_of_a_plain_batch() -> None:
    events = [inference_event(i, model=f"m{i % 3}") for i in range(50)]
    batch = decode_inference_batch([_frame(e) for e in events])
    assert batch.errors == [] and len(batch) == 50
    assert batch.model_name == [e["model_name"] for e in events]
    assert batch.event_time.tolist() == [e["event_time"] for e in events]
    assert batch.latency_ms.tolist() == [e["latency_ms"] for e in events]
    assert [VARIANTS[v] for v in batch.variant] == [e["variant"] for e in events]
    assert [OUTCOMES[o] for o in batch.outcome] == [e["outcome"] for e in events]
    assert (batch.prediction_kind == PREDICTION_DOUBLE).all()
    assert batch.prediction.tolist() == [e["prediction"] for e in events]
    assert batch.probabilities == [e["probabilities"] for e in events]
    (block,) = batch.features
    assert block.names == FEATURE_NAMES and block.rows.tolist() == list(range(50))
    expected = np.array([[e["features"][n] for n in FEATURE_NAMES] for e in events])
    assert np.array_equal(block.values, expected)


def test_feature_matrix_aligns_to_any_order_with_nan_for_absent() -> None:
    a = inference_event(1, features={"x": 1.0, "y": 2.0, "z": 3.0, "u": 0, "v": 0, "w": 0})
    b = inference_event(2, features={"y": 20.0, "x": 10.0})
    batch = decode_inference_batch([_frame(a), _frame(b)])
    matrix = batch.feature_matrix(["y", "x", "missing"])
    assert np.array_equal(matrix, [[2.0, 1.0, np.nan], [20.0, 10.0, np.nan]], equal_nan=True)
    only_b = batch.feature_matrix(["x"], rows=np.array([1]))
    assert only_b.tolist() == [[10.0]]


def test_layouts_sharing_first_key_and_count_are_told_apart() -> None:
    a = inference_event(1, features={"a0": 1.0, **{f"b{i}": float(i) for i in range(29)}})
    b = inference_event(2, features={"a0": 5.0, **{f"c{i}": float(-i) for i in range(29)}})
    c = inference_event(3, features={"a0": 7.0, **{f"bb{i}": 0.5 for i in range(29)}})
    events = [a, b, c, b, a, c]
    batch = decode_inference_batch([_frame(e) for e in events])
    assert [batch.record(r) for r in range(len(batch))] == events
    assert sorted(len(block.rows) for block in batch.features) == [2, 2, 2]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"{}", BadMagicError),
        (None, BadMagicError),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x00", UnknownSchemaError),
        (_frame(inference_event(5))[:300], TruncatedRecordError),
        (_frame(inference_event(5)) + b"\x00", MalformedRecordError),
        (_frame(inference_event(5, features={"a": math.nan} | dict.fromkeys("bcdefg", 1.0))),
         InvalidRecordError),
        (_frame(inference_event(5, latency_ms=math.inf)), InvalidRecordError),
        (_frame(inference_event(5, probabilities={"p": math.nan})), InvalidRecordError),
        (_frame(inference_event(5, source="caf\u00e9")).replace(b"caf\xc3\xa9", b"caf\xc3\x28"),
         MalformedRecordError),
        (CODEC.encode("FeedbackEvent", samples()["FeedbackEvent"]), WrongRecordTypeError),
    ],
)  # fmt: skip
def test_a_bad_value_is_reported_and_the_rest_decode(
    value: bytes | None, error: type[DecodeError]
) -> None:
    good = [_frame(inference_event(i)) for i in range(6)]
    values = [*good[:3], value, *good[3:]]
    batch = decode_inference_batch(values)
    (bad,) = batch.errors
    assert bad.index == 3 and isinstance(bad.error, error)
    assert batch.index.tolist() == [0, 1, 2, 4, 5, 6]
    _assert_like_one_by_one(values, batch)


def test_non_ascii_strings_decode() -> None:
    record = inference_event(
        4, model="modèle-€", source="サービス", entity_id="ü", categorical_features={"ß": "ñ"}
    )
    batch = decode_inference_batch([_frame(record), _frame(inference_event(5))])
    assert batch.record(0) == record and batch.errors == []


@pytest.mark.parametrize("source", ["svc", "", "サービス"])
def test_a_string_shared_by_every_row_decodes(source: str) -> None:
    """Columns where every row holds the same string (one model per partition) take a
    shortcut; it must give what the rows hold, ASCII or not."""
    events = [inference_event(i, model="m", source=source) for i in range(20)]
    batch = decode_inference_batch([_frame(e) for e in events])
    assert batch.errors == []
    assert [batch.record(r) for r in range(len(batch))] == events


def test_a_malformed_string_shared_by_every_row_is_a_bad_value_in_each() -> None:
    framed = _frame(inference_event(1, source="caf\u00e9"))
    bad = framed.replace(b"caf\xc3\xa9", b"caf\xc3\x28")
    batch = decode_inference_batch([bad] * 4)
    assert len(batch) == 0
    assert [(e.index, type(e.error)) for e in batch.errors] == [
        (i, MalformedRecordError) for i in range(4)
    ]


def test_empty_batch() -> None:
    batch = decode_inference_batch([])
    assert len(batch) == 0 and batch.errors == [] and batch.features == ()


def test_prediction_union_branches() -> None:
    events = [inference_event(i, prediction=p) for i, p in enumerate([None, 0.25, "fraud"])]
    batch = decode_inference_batch([_frame(e) for e in events])
    assert [batch.record(r)["prediction"] for r in range(3)] == [None, 0.25, "fraud"]
    assert batch.prediction_label == [None, None, "fraud"]
    assert np.isnan(batch.prediction[[0, 2]]).all() and batch.prediction[1] == 0.25


def test_multi_block_features_map_goes_through_the_codec() -> None:
    record = inference_event(features={"x": 1.0, "y": 2.0})
    framed = _frame(record)
    one_block = b"\x04" + b"\x02x" + struct.pack("<d", 1.0) + b"\x02y" + struct.pack("<d", 2.0)
    two_blocks = b"\x02\x02x" + struct.pack("<d", 1.0) + b"\x02\x02y" + struct.pack("<d", 2.0)
    multi = framed.replace(one_block, two_blocks)
    batch = decode_inference_batch([multi, framed])
    assert batch.errors == [] and batch.record(0) == batch.record(1) == record


class _Message(FakeMessage):
    def error(self) -> None:
        return None


def test_consumer_helper_routes_bad_values_and_keeps_message_alignment() -> None:
    producer = RecordingProducer()
    router = DeadLetterRouter(producer, "dlq")  # type: ignore[arg-type]
    decoder = RecordDecoder(CODEC, router)
    values = [_frame(inference_event(0)), b"junk", _frame(inference_event(2))]
    messages = [_Message(v, _offset=100 + i) for i, v in enumerate(values)]
    columns = decoder.decode_inference_columns(messages)  # type: ignore[arg-type]
    assert [m.offset() for m in columns.messages] == [100, 102]
    assert columns.batch.event_id == [inference_event(i)["event_id"] for i in (0, 2)]
    (sent,) = producer.sent
    assert sent["value"] == b"junk" and (REASON, b"bad_magic") in sent["headers"]
