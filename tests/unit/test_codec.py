"""Single-object codec: round trips of every record type and every bad-record case."""

from __future__ import annotations

import math
from typing import Any

import pytest

from schemas.catalog import RECORD_TYPES, SchemaVersion, fingerprint_of, load_catalog, parse
from schemas.codec import SINGLE_OBJECT_MAGIC, SingleObjectCodec, avro_body
from schemas.exceptions import (
    BadMagicError,
    DecodeError,
    InvalidRecordError,
    MalformedRecordError,
    RecordValidationError,
    SchemaMismatchError,
    TruncatedRecordError,
    UnknownSchemaError,
)
from tests.records_factory import inference_event, samples

CODEC = SingleObjectCodec()


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_every_record_type_round_trips(record_type: str) -> None:
    record = samples()[record_type]
    data = CODEC.encode(record_type, record)
    decoded = CODEC.decode(data)
    assert decoded.record_type == record_type
    assert decoded.value == record
    assert decoded.writer == load_catalog().current(record_type).fingerprint.hex()


def test_header_is_avro_single_object_encoding() -> None:
    data = CODEC.encode("FeedbackEvent", samples()["FeedbackEvent"])
    assert data[:2] == b"\xc3\x01"
    # The fingerprint is computed independently here from the .avsc's canonical form.
    raw = load_catalog().current("FeedbackEvent").raw
    assert data[2:10] == fingerprint_of(raw)[1]


def test_absent_optional_fields_take_their_defaults() -> None:
    record = inference_event()
    for optional in ("categorical_features", "prediction", "probabilities", "trace_id"):
        del record[optional]
    value = CODEC.decode(CODEC.encode("InferenceEvent", record)).value
    assert value["categorical_features"] == {} and value["probabilities"] == {}
    assert value["prediction"] is None and value["trace_id"] is None


def _good() -> bytes:
    return CODEC.encode("InferenceEvent", inference_event(3))


def test_wrong_magic_byte_is_rejected() -> None:
    data = bytearray(_good())
    data[0] = 0x00
    with pytest.raises(BadMagicError) as err:
        CODEC.decode(bytes(data))
    assert err.value.reason == "bad_magic"


def test_json_is_not_mistaken_for_avro() -> None:
    with pytest.raises(BadMagicError):
        CODEC.decode(b'{"model_name": "x"}')


def test_unknown_fingerprint_is_rejected() -> None:
    data = SINGLE_OBJECT_MAGIC + b"\x01\x02\x03\x04\x05\x06\x07\x08" + _good()[10:]
    with pytest.raises(UnknownSchemaError, match="0102030405060708") as err:
        CODEC.decode(data)
    assert err.value.reason == "unknown_schema"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_truncated_bytes_are_rejected_at_every_cut(record_type: str) -> None:
    data = CODEC.encode(record_type, samples()[record_type])
    for cut in range(len(data) - 1, 0, -1):
        # Every prefix is unusable: truncated, or (for some cuts) malformed/bad magic.
        with pytest.raises(DecodeError) as err:
            CODEC.decode(data[:cut])
        assert err.value.reason in {"truncated", "malformed", "bad_magic"}, cut


@pytest.mark.parametrize("record_type", ["InferenceEvent", "FeedbackEvent"])
def test_a_record_missing_its_last_byte_is_truncated(record_type: str) -> None:
    # Both end with the `source` string: one byte short is unambiguously truncation.
    data = CODEC.encode(record_type, samples()[record_type])
    with pytest.raises(TruncatedRecordError) as err:
        CODEC.decode(data[:-1])
    assert err.value.reason == "truncated"


def test_empty_message_is_rejected() -> None:
    with pytest.raises(BadMagicError):
        CODEC.decode(b"")


def test_trailing_bytes_are_rejected() -> None:
    for record_type in RECORD_TYPES:
        data = CODEC.encode(record_type, samples()[record_type])
        with pytest.raises(MalformedRecordError, match="unexpected bytes"):
            CODEC.decode(data + b"\x00")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "field",
    ["features", "probabilities", "latency_ms", "prediction"],
)
def test_non_finite_numbers_on_the_wire_are_invalid(bad: float, field: str) -> None:
    record = inference_event(5)
    if field in ("features", "probabilities"):
        record[field] = {**record[field], "x": bad}
    else:
        record[field] = bad
    # A foreign producer skips validation; the reader must still refuse the record.
    data = CODEC.encode("InferenceEvent", record, check=False)
    with pytest.raises(InvalidRecordError, match=field) as err:
        CODEC.decode(data)
    assert err.value.reason == "invalid_value"


@pytest.mark.parametrize("record_type", ["DriftScore", "SloWindow", "DeploymentEvent"])
def test_non_finite_numbers_in_other_records_are_invalid(record_type: str) -> None:
    record: dict[str, Any] = samples()[record_type]
    field = {"DriftScore": "drift_score", "SloWindow": "latency_p99_ms"}.get(
        record_type, "canary_share"
    )
    record[field] = math.nan
    with pytest.raises(InvalidRecordError, match=field):
        CODEC.decode(CODEC.encode(record_type, record, check=False))


def test_encode_refuses_nan_naming_the_field() -> None:
    record = inference_event(features={"age": 31.0, "income": math.nan})
    with pytest.raises(RecordValidationError) as err:
        CODEC.encode("InferenceEvent", record)
    assert err.value.field == "features['income']"
    assert "finite" in str(err.value)


def test_missing_required_field_is_a_schema_mismatch() -> None:
    # A producer with its own (incompatible) version of the schema: model_name dropped,
    # no default. Its fingerprint is known to this reader, but it cannot resolve.
    raw = dict(load_catalog().current("FeedbackEvent").raw)
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "model_name"]
    canonical, fp = fingerprint_of(raw)
    foreign = SchemaVersion("FeedbackEvent", 99, raw, parse(raw), canonical, fp, False)
    codec = SingleObjectCodec(extra_writers=(foreign,))
    record = {k: v for k, v in samples()["FeedbackEvent"].items() if k != "model_name"}
    data = SINGLE_OBJECT_MAGIC + fp + avro_body(foreign, record)
    with pytest.raises(SchemaMismatchError, match="model_name") as err:
        codec.decode(data)
    assert err.value.reason == "schema_mismatch"


def test_encode_refuses_missing_required_field() -> None:
    record = inference_event()
    del record["model_name"]
    with pytest.raises(RecordValidationError, match="model_name: missing required field"):
        CODEC.encode("InferenceEvent", record)


def test_invalid_utf8_is_malformed() -> None:
    data = bytearray(CODEC.encode("FeedbackEvent", samples()["FeedbackEvent"]))
    # feedback_id "f-1" starts right after the header and its length byte.
    data[11] = 0xFF
    with pytest.raises(MalformedRecordError, match="UTF-8"):
        CODEC.decode(bytes(data))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_feedback_label_must_be_finite_on_the_fast_path_too(bad: float) -> None:
    record: dict[str, Any] = samples()["FeedbackEvent"]
    assert CODEC.decode(CODEC.encode("FeedbackEvent", record)).value == record
    record["label"] = bad
    with pytest.raises(InvalidRecordError, match="label"):
        CODEC.decode(CODEC.encode("FeedbackEvent", record, check=False))
