"""The Confluent wire-format path against a real Schema Registry, when one is reachable."""

from __future__ import annotations

import os
import struct
import urllib.request

import pytest

from schemas.catalog import RECORD_TYPES
from schemas.codec import make_codec
from schemas.exceptions import BadMagicError, UnknownSchemaError
from schemas.registry_codec import RegistryCodec
from schemas.settings import SchemaRegistrySettings
from tests.records_factory import samples


@pytest.fixture(scope="module")
def registry_url() -> str:
    url = os.environ.get("DRIFTLINE_SCHEMA_REGISTRY_URL")
    if not url:
        pytest.skip("no Schema Registry: set DRIFTLINE_SCHEMA_REGISTRY_URL to test this path")
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/subjects", timeout=3):  # noqa: S310
            pass
    except OSError as exc:
        pytest.skip(f"Schema Registry at {url} is not reachable: {exc}")
    return url


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_records_round_trip_in_confluent_wire_format(registry_url: str, record_type: str) -> None:
    codec = make_codec(registry_url)
    assert isinstance(codec, RegistryCodec)
    data = codec.encode(record_type, samples()[record_type])
    magic, schema_id = struct.unpack_from(">bI", data)
    assert magic == 0 and schema_id == codec.schema_id(record_type)
    decoded = codec.decode(data)
    assert decoded.value == samples()[record_type]
    assert decoded.writer == f"registry:{schema_id}"


def test_unknown_id_and_bad_magic_are_rejected(registry_url: str) -> None:
    codec = RegistryCodec(SchemaRegistrySettings(url=registry_url))
    with pytest.raises(UnknownSchemaError):
        codec.decode(b"\x00\x7f\xff\xff\xf0" + b"\x00" * 10)
    with pytest.raises(BadMagicError):
        codec.decode(b"\xc3\x01" + b"\x00" * 10)
