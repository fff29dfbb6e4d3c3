"""Turn Driftline records into bytes and back, carrying the writer schema's identity.

Two framings, one contract:

- :class:`SingleObjectCodec` (default): the Avro specification's single-object encoding,
  ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint + the Avro body. The
  fingerprint is resolved against the schemas shipped in the package (current and
  history), so no server is needed and an old record still decodes.
- :class:`~schemas.registry_codec.RegistryCodec`: the Confluent wire format, ``00`` + a
  4-byte schema id from a Schema Registry + the Avro body; chosen by
  :func:`make_codec` when ``DRIFTLINE_SCHEMA_REGISTRY_URL`` is set.

Either way the reader decodes with the writer's schema and resolves into the current
one, so every consumer sees the current shape. Every failure is a
:class:`~schemas.exceptions.DecodeError` whose ``reason`` routes it to dead letters.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.catalog import (
    DRIFT_PARTIAL,
    FEEDBACK_EVENT,
    INFERENCE_EVENT,
    Catalog,
    SchemaVersion,
    load_catalog,
)
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
from schemas.inference_decoder import LAYOUT_FINGERPRINT, decode_inference_event
from schemas.validation import validate

#: Avro single-object encoding marker.
SINGLE_OBJECT_MAGIC: Final = b"\xc3\x01"
_HEADER_LEN: Final = 10


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded record.

    :param record_type: e.g. ``InferenceEvent``.
    :param value: the record in the current schema's shape.
    :param writer: identity of the writer schema (fingerprint hex or ``registry:<id>``).
    """

    record_type: str
    value: dict[str, Any]
    writer: str


class Codec(Protocol):
    """What producers and consumers need from an encoding."""

    def encode(self, record_type: str, value: Mapping[str, Any], *, check: bool = True) -> bytes:
        """Bytes of ``value`` written with the current schema of ``record_type``.

        :raises RecordValidationError: ``check`` is on and a field is wrong.
        """
        ...

    def decode(self, data: bytes) -> Decoded:
        """The record in ``data``, resolved into its current schema and checked.

        :raises DecodeError: with the reason the record cannot be used.
        """
        ...


def avro_body(version: SchemaVersion, value: Mapping[str, Any]) -> bytes:
    """The Avro binary body of ``value`` (fastavro fills defaults of absent fields)."""
    out = io.BytesIO()
    schemaless_writer(out, version.parsed, dict(value))
    return out.getvalue()


def read_body(body: bytes, writer: dict[str, Any], reader: dict[str, Any] | None) -> Any:
    """fastavro-decode ``body``; map its failures to :class:`DecodeError` reasons.

    ``reader`` is None when writer and reader are the same schema (no resolution).
    """
    stream = io.BytesIO(body)
    try:
        value = schemaless_reader(stream, writer, reader)
    except SchemaResolutionError as exc:
        raise SchemaMismatchError(
            f"writer schema does not resolve to the reader's: {exc}"
        ) from None
    except (EOFError, struct.error):
        raise TruncatedRecordError("record ends before its last field") from None
    except UnicodeDecodeError as exc:
        raise MalformedRecordError(f"invalid UTF-8 in a string: {exc.reason}") from None
    except (IndexError, ValueError, OverflowError, MemoryError) as exc:
        raise MalformedRecordError(f"not a valid Avro encoding: {exc}") from None
    remaining = len(body) - stream.tell()
    if remaining:
        raise MalformedRecordError(f"{remaining} unexpected bytes after the record")
    return value


def _all_finite(values: Any) -> bool:
    # sum() of finite floats is finite unless it overflows (then the slow check decides).
    try:
        return math.isfinite(sum(values))
    except TypeError:
        return False


def _partial_finite(value: dict[str, Any]) -> bool:
    # DriftPartial's doubles are the sketch's moments and bounds (one value per feature
    # and bin grid) and the detectors' statistics; the generic walk costs ~1.5 ms a record.
    window = value.get("window")
    if window is None:
        return True
    sketch = window["sketch"]
    for part in (sketch["numeric"], sketch["probability"]):
        if part is not None and not (
            _all_finite(part["mean"])
            and _all_finite(part["m2"])
            and _all_finite(v for v in part["min"] if v is not None)
            and _all_finite(v for v in part["max"] if v is not None)
        ):
            return False
    return _all_finite(
        c["statistic"] for c in window["change_points"] if c["statistic"] is not None
    )


def check_decoded(version: SchemaVersion, value: dict[str, Any]) -> None:
    """Driftline's value rules on a freshly decoded record (types are Avro's job).

    InferenceEvents and FeedbackEvents take a fast path: this runs for every event of every
    model (their only value rule is finite numbers; anything else gets the full check,
    which names the field). DriftPartials too: their only doubles are arrays of a
    sketch, which the generic walk checks one by one.
    :raises InvalidRecordError: naming the field that breaks a rule.
    """
    if version.record_type == FEEDBACK_EVENT:  # every label the drift processor joins
        label = value["label"]
        if not isinstance(label, float) or math.isfinite(label):
            return
    if version.record_type == INFERENCE_EVENT:
        prediction = value["prediction"]
        if (
            _all_finite(value["features"].values())
            and _all_finite(value["probabilities"].values())
            and math.isfinite(value["latency_ms"])
            and (not isinstance(prediction, float) or math.isfinite(prediction))
        ):
            return
    if version.record_type == DRIFT_PARTIAL and _partial_finite(value):
        return
    try:
        validate(version.record_type, version.raw, value)
    except RecordValidationError as exc:
        raise InvalidRecordError(exc) from None


class SingleObjectCodec:
    """Avro single-object encoding, schemas resolved from the package's catalog.

    :param catalog: the known schemas; defaults to everything shipped in ``schemas/avro``.
    :param extra_writers: further writer schemas to recognise (tests, or schemas of
        newer producers not yet shipped here).
    """

    def __init__(
        self, catalog: Catalog | None = None, extra_writers: tuple[SchemaVersion, ...] = ()
    ) -> None:
        self.catalog = catalog or load_catalog()
        self._writers = self.catalog.by_fingerprint()
        for version in extra_writers:
            self._writers[version.fingerprint] = version
        self._headers = {
            v.record_type: SINGLE_OBJECT_MAGIC + v.fingerprint
            for v in self.catalog.versions
            if v.current
        }
        self._readers: dict[bytes, Callable[[bytes], tuple[SchemaVersion, dict[str, Any]]]] = {}

    def encode(self, record_type: str, value: Mapping[str, Any], *, check: bool = True) -> bytes:
        version = self.catalog.current(record_type)
        if check:
            validate(record_type, version.raw, value)
        return self._headers[record_type] + avro_body(version, value)

    def decode(self, data: bytes) -> Decoded:
        if len(data) < _HEADER_LEN:
            if not data.startswith(SINGLE_OBJECT_MAGIC[: len(data)]) or not data:
                raise BadMagicError(f"record does not start with {SINGLE_OBJECT_MAGIC.hex()}")
            raise TruncatedRecordError(f"{len(data)} bytes: shorter than the 10-byte header")
        if data[:2] != SINGLE_OBJECT_MAGIC:
            raise BadMagicError(
                f"record starts with {data[:2].hex()}, not {SINGLE_OBJECT_MAGIC.hex()} "
                "(not Avro single-object encoding)"
            )
        fingerprint = data[2:_HEADER_LEN]
        reader = self._readers.get(fingerprint)
        if reader is None:
            reader = self._readers[fingerprint] = self._reader_for(fingerprint)
        version, value = reader(data[_HEADER_LEN:])
        check_decoded(version, value)
        return Decoded(version.record_type, value, fingerprint.hex())

    def _reader_for(
        self, fingerprint: bytes
    ) -> Callable[[bytes], tuple[SchemaVersion, dict[str, Any]]]:
        writer = self._writers.get(fingerprint)
        if writer is None:
            raise UnknownSchemaError(
                f"writer schema fingerprint {fingerprint.hex()} is not a known Driftline schema"
            )
        current = self.catalog.current(writer.record_type)
        if fingerprint == LAYOUT_FINGERPRINT and current.fingerprint == LAYOUT_FINGERPRINT:
            return lambda body: (current, decode_inference_event(body))
        reader_schema = None if writer.fingerprint == current.fingerprint else current.parsed

        def read(body: bytes) -> tuple[SchemaVersion, dict[str, Any]]:
            value = read_body(body, writer.parsed, reader_schema)
            if not isinstance(value, dict):
                raise MalformedRecordError("decoded value is not a record")
            return current, value

        return read


def make_codec(registry_url: str | None = None) -> Codec:
    """The codec the settings ask for: registry when a URL is configured, else single-object.

    Reads :class:`~schemas.settings.SchemaRegistrySettings` when ``registry_url`` is None.
    """
    from schemas.settings import SchemaRegistrySettings

    settings = SchemaRegistrySettings()
    if registry_url is not None:
        settings = settings.model_copy(update={"url": registry_url})
    if not settings.url:
        return SingleObjectCodec()
    from schemas.registry_codec import RegistryCodec

    return RegistryCodec(settings)


__all__ = [
    "SINGLE_OBJECT_MAGIC",
    "Codec",
    "DecodeError",
    "Decoded",
    "SingleObjectCodec",
    "make_codec",
]
