"""The Confluent wire format: ``00`` + 4-byte big-endian schema id + Avro body.

Used when ``DRIFTLINE_SCHEMA_REGISTRY_URL`` names a Confluent-compatible Schema
Registry. Subjects follow the record-name strategy (``io.driftline.InferenceEvent``), so
one subject per record type serves every topic and every ``DRIFTLINE_KAFKA_TOPIC_PREFIX``.
The registry client (confluent-kafka's) caches ids and schemas, so a registry call
happens once per schema, not per record. Bodies are read and written by fastavro as in
:mod:`schemas.codec`, with the same resolution into the current schema.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError as _ClientError

from schemas.catalog import Catalog, SchemaVersion, load_catalog, parse
from schemas.codec import Decoded, avro_body, check_decoded, read_body
from schemas.exceptions import (
    BadMagicError,
    SchemaRegistryError,
    TruncatedRecordError,
    UnknownSchemaError,
)
from schemas.settings import SchemaRegistrySettings
from schemas.validation import validate

CONFLUENT_MAGIC: Final = 0
_HEADER: Final = struct.Struct(">bI")
_Reader = Callable[[bytes], tuple[SchemaVersion, dict[str, Any]]]


def registry_client(settings: SchemaRegistrySettings) -> SchemaRegistryClient:
    """A registry client from the settings (the URL must be set)."""
    if not settings.url:
        raise SchemaRegistryError("DRIFTLINE_SCHEMA_REGISTRY_URL is not set")
    conf: dict[str, Any] = {"url": settings.url, "timeout": settings.timeout_s}
    if settings.basic_auth_user_info is not None:
        conf["basic.auth.user.info"] = settings.basic_auth_user_info.get_secret_value()
    return SchemaRegistryClient(conf)


class RegistryCodec:
    """Confluent wire format with ids from a Schema Registry.

    :param settings: registry location and whether to register schemas on first use.
    :param client: an existing client (shared cache); built from ``settings`` if None.
    """

    def __init__(
        self,
        settings: SchemaRegistrySettings,
        client: SchemaRegistryClient | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or registry_client(settings)
        self.catalog = catalog or load_catalog()
        self._ids: dict[str, bytes] = {}
        self._readers: dict[int, _Reader] = {}

    def schema_id(self, record_type: str) -> int:
        """The registry id of the current schema of ``record_type`` (registered if allowed)."""
        return int(_HEADER.unpack(self._header(record_type))[1])

    def _header(self, record_type: str) -> bytes:
        header = self._ids.get(record_type)
        if header is None:
            version = self.catalog.current(record_type)
            schema = Schema(json.dumps(version.raw), "AVRO")
            try:
                if self.settings.auto_register:
                    schema_id = self.client.register_schema(version.full_name, schema)
                else:
                    registered = self.client.lookup_schema(version.full_name, schema)
                    schema_id = int(registered.schema_id or 0)
            except (_ClientError, OSError) as exc:
                raise SchemaRegistryError(
                    f"registry {self.settings.url} refused {version.full_name}: {exc}"
                ) from exc
            header = self._ids[record_type] = _HEADER.pack(CONFLUENT_MAGIC, schema_id)
        return header

    def encode(self, record_type: str, value: Mapping[str, Any], *, check: bool = True) -> bytes:
        version = self.catalog.current(record_type)
        if check:
            validate(record_type, version.raw, value)
        return self._header(record_type) + avro_body(version, value)

    def decode(self, data: bytes) -> Decoded:
        if not data or data[0] != CONFLUENT_MAGIC:
            first = data[:1].hex() or "nothing"
            raise BadMagicError(f"record starts with {first}, not 00 (Confluent wire format)")
        if len(data) < _HEADER.size:
            raise TruncatedRecordError(f"{len(data)} bytes: shorter than the 5-byte header")
        schema_id = _HEADER.unpack_from(data)[1]
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._readers[schema_id] = self._reader_for(schema_id)
        version, value = reader(data[_HEADER.size :])
        check_decoded(version, value)
        return Decoded(version.record_type, value, f"registry:{schema_id}")

    def _reader_for(self, schema_id: int) -> _Reader:
        try:
            schema = self.client.get_schema(schema_id)
        except _ClientError as exc:
            raise UnknownSchemaError(
                f"schema id {schema_id} unknown to the registry: {exc}"
            ) from None
        except OSError as exc:
            raise SchemaRegistryError(f"registry {self.settings.url} unreachable: {exc}") from exc
        raw = json.loads(schema.schema_str or "null")
        name = raw.get("name", "") if isinstance(raw, dict) else ""
        record_type = name.rsplit(".", 1)[-1]
        try:
            current = self.catalog.current(record_type)
        except Exception:
            raise UnknownSchemaError(
                f"schema id {schema_id} is {name or 'not a record'}, not a Driftline record"
            ) from None
        writer = parse(raw)

        def read(body: bytes) -> tuple[SchemaVersion, dict[str, Any]]:
            value = read_body(body, writer, current.parsed)
            return current, value

        return read
