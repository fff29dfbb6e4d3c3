"""The specialised InferenceEvent decoder gives exactly fastavro's answer, or fails alike."""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import load_catalog
from schemas.exceptions import DecodeError, MalformedRecordError, TruncatedRecordError
from schemas.inference_decoder import LAYOUT_FINGERPRINT, decode_inference_event
from tests.records_factory import inference_event

CURRENT = load_catalog().current("InferenceEvent")


def test_decoder_follows_the_shipped_schema() -> None:
    # Fails when inference_event.avsc changes: update the decoder (or drop it) then.
    assert CURRENT.fingerprint == LAYOUT_FINGERPRINT


def _encode(record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, CURRENT.parsed, record)
    return buf.getvalue()


def _fastavro(body: bytes) -> Any:
    return schemaless_reader(io.BytesIO(body), CURRENT.parsed, None)


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (hypothesis draws them; Avro carries them)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


names = st.text(min_size=0, max_size=80)
doubles = st.floats(allow_nan=True, allow_infinity=True)
optional_text = st.none() | st.text(max_size=100)
records = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=70),
        "request_id": st.text(max_size=200),
        "event_time": st.integers(-(2**63), 2**63 - 1),
        "model_name": names,
        "model_version": names,
        "variant": st.sampled_from(["baseline", "canary", "shadow"]),
        "features": st.dictionaries(names, doubles, max_size=70),
        "categorical_features": st.dictionaries(names, st.text(max_size=20), max_size=5),
        "prediction": st.none() | doubles | st.text(max_size=20),
        "probabilities": st.dictionaries(names, doubles, max_size=8),
        "latency_ms": doubles,
        "outcome": st.sampled_from(["ok", "client_error", "server_error"]),
        "error_type": optional_text,
        "entity_id": optional_text,
        "trace_id": optional_text,
        "source": st.text(max_size=100),
    }
)


@settings(max_examples=400, deadline=None)
@given(records)
def test_matches_fastavro_on_arbitrary_records(record: dict[str, Any]) -> None:
    body = _encode(record)
    # Twice: the second pass goes through the layout cache learned by the first.
    assert _same(decode_inference_event(body), _fastavro(body))
    assert _same(decode_inference_event(body), _fastavro(body))


def test_layout_cache_does_not_confuse_models_with_same_feature_count() -> None:
    a = inference_event(1, features={f"a{i}": float(i) for i in range(30)})
    b = inference_event(2, features={f"b{i}": float(i) for i in range(30)})
    same_first = inference_event(3, features={"a0": 1.0, **{f"c{i}": 2.0 for i in range(29)}})
    for record in (a, b, a, same_first, b, same_first):
        body = _encode(record)
        assert decode_inference_event(body) == _fastavro(body) == record


def test_multi_block_maps_are_read() -> None:
    # Avro allows a map in several blocks, and negative counts with a byte size; other
    # writers (Java) use them. Build one by hand: two blocks of one entry each.
    record = inference_event(features={"x": 1.0, "y": 2.0})
    body = _encode(record)
    one_block = b"\x04" + b"\x02x" + struct.pack("<d", 1.0) + b"\x02y" + struct.pack("<d", 2.0)
    entry_y = b"\x02y" + struct.pack("<d", 2.0)
    sized = (
        b"\x01" + bytes([2 * len(b"\x02x" + struct.pack("<d", 1.0))]) + b"\x02x"
        + struct.pack("<d", 1.0) + b"\x02" + entry_y
    )  # fmt: skip
    start = body.index(one_block)
    multi = body[:start] + sized + body[start + len(one_block) :]
    assert decode_inference_event(multi) == _fastavro(multi) == record


@pytest.mark.parametrize("cut", [1, 5, 40, 100, 300, -9, -1])
def test_truncation_is_reported(cut: int) -> None:
    body = _encode(inference_event(7))
    with pytest.raises(DecodeError) as err:
        decode_inference_event(body[:cut])
    assert isinstance(err.value, TruncatedRecordError | MalformedRecordError)


def test_truncation_inside_the_features_is_truncated() -> None:
    body = _encode(inference_event(7))
    decode_inference_event(body)  # learn the layout
    with pytest.raises(TruncatedRecordError):
        decode_inference_event(body[:200])


def test_bad_enum_index_is_malformed() -> None:
    record = inference_event(8)
    body = bytearray(_encode(record))
    # variant sits right after model_version ("7": length byte 0x02, then "7").
    pos = body.index(b"\x027", body.index(b"fraud-detector")) + 2
    body[pos] = 0x08  # index 4: no fourth variant
    with pytest.raises(MalformedRecordError, match="variant"):
        decode_inference_event(bytes(body))


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedRecordError, match="unexpected bytes"):
        decode_inference_event(_encode(inference_event(9)) + b"\x00\x00")


@pytest.mark.parametrize("tenth", [0x01, 0x02, 0x7F])
def test_ten_byte_longs_wrap_to_64_bits_like_fastavro(tenth: int) -> None:
    body = bytearray(_encode(inference_event(3)))
    start = 1 + body[0] // 2  # event_id
    start += 1 + body[start] // 2  # request_id
    size = next(i for i in range(start, start + 10) if body[i] < 0x80) + 1 - start
    body[start : start + size] = b"\xff" * 9 + bytes([tenth])
    assert decode_inference_event(bytes(body)) == _fastavro(bytes(body))
