"""Every schema change is backward and forward compatible with every released version.

Backward: the current reader reads records written with every earlier version.
Forward: every earlier reader reads records written with the current version.
Checked by actually writing and resolving records with fastavro, not by rules alone.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.utils import generate_many

from schemas.catalog import RECORD_TYPES, fingerprint_of, load_catalog, parse

CATALOG = load_catalog()


def _round(writer: dict[str, Any], reader: dict[str, Any], records: list[Any]) -> None:
    w, r = parse(writer), parse(reader)
    for record in records:
        buf = io.BytesIO()
        schemaless_writer(buf, w, record)
        buf.seek(0)
        schemaless_reader(buf, w, r)


def assert_compatible(old: dict[str, Any], new: dict[str, Any], count: int = 50) -> None:
    """Records of each version resolve into the other (raises if not)."""
    _round(old, new, list(generate_many(old, count)))
    _round(new, old, list(generate_many(new, count)))


def test_every_record_type_has_a_released_version() -> None:
    for record_type in RECORD_TYPES:
        assert CATALOG.history(record_type), f"{record_type} has no file in avro/history/"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_current_schema_is_snapshotted_in_history(record_type: str) -> None:
    # A change to a .avsc must come with a new history/<stem>.vN.avsc copy of it, so
    # the next change is tested against it.
    latest = CATALOG.history(record_type)[-1]
    current = CATALOG.current(record_type)
    assert current.canonical == latest.canonical, (
        f"{record_type} changed since v{latest.version}: add history/ ... .v"
        f"{latest.version + 1}.avsc with the new schema"
    )


@pytest.mark.parametrize(
    ("record_type", "version"),
    [(t, v.version) for t in RECORD_TYPES for v in CATALOG.history(t)],
)
def test_current_and_released_versions_read_each_other(record_type: str, version: int) -> None:
    old = next(v for v in CATALOG.history(record_type) if v.version == version)
    assert_compatible(old.raw, CATALOG.current(record_type).raw)


def test_the_check_catches_a_new_required_field() -> None:
    old = CATALOG.current("FeedbackEvent").raw
    new = copy.deepcopy(old)
    new["fields"].append({"name": "labeller", "type": "string"})  # no default: breaks
    with pytest.raises(SchemaResolutionError):
        assert_compatible(old, new)


def test_the_check_catches_a_removed_enum_symbol() -> None:
    old = CATALOG.current("Alert").raw
    new = copy.deepcopy(old)
    severity = next(f for f in new["fields"] if f["name"] == "severity")
    severity["type"]["symbols"] = ["warning", "critical"]
    with pytest.raises(SchemaResolutionError):
        assert_compatible(old, new, count=200)


def test_an_optional_field_with_default_is_compatible() -> None:
    old = CATALOG.current("FeedbackEvent").raw
    new = copy.deepcopy(old)
    new["fields"].append({"name": "labeller", "type": ["null", "string"], "default": None})
    assert_compatible(old, new)
    assert fingerprint_of(old)[1] != fingerprint_of(new)[1]
