"""The shipped Avro schemas: loaded once, parsed, fingerprinted, and mapped to topics.

The catalog is what a reader resolves a writer's schema identity against: every current
schema and every earlier version kept in ``schemas/avro/history/`` is known by its
CRC-64-AVRO fingerprint, so a record written by an older (or newer, once shipped)
producer still decodes into the current shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas import topics
from schemas.exceptions import ConfigurationError

#: Avro's namespace for every Driftline record.
NAMESPACE: Final = "io.driftline"

#: Record names, each the stem of its ``.avsc`` file in CamelCase.
INFERENCE_EVENT: Final = "InferenceEvent"
FEEDBACK_EVENT: Final = "FeedbackEvent"
DRIFT_SCORE: Final = "DriftScore"
SLO_WINDOW: Final = "SloWindow"
ALERT: Final = "Alert"
RETRAIN_REQUEST: Final = "RetrainRequest"
DEPLOYMENT_EVENT: Final = "DeploymentEvent"
SHADOW_COMPARISON: Final = "ShadowComparison"
DRIFT_PARTIAL: Final = "DriftPartial"

RECORD_TYPES: Final = (
    INFERENCE_EVENT,
    FEEDBACK_EVENT,
    DRIFT_SCORE,
    SLO_WINDOW,
    ALERT,
    RETRAIN_REQUEST,
    DEPLOYMENT_EVENT,
    SHADOW_COMPARISON,
    DRIFT_PARTIAL,
)

#: Which record each topic carries (names without prefix). The dead-letter topic carries
#: raw bytes of any kind, so it has no entry.
TOPIC_RECORDS: Final[dict[str, str]] = {
    topics.INFERENCE_EVENTS.name: INFERENCE_EVENT,
    topics.INFERENCE_FEEDBACK.name: FEEDBACK_EVENT,
    topics.DRIFT_SCORES.name: DRIFT_SCORE,
    topics.SLO_WINDOWS.name: SLO_WINDOW,
    topics.ALERTS.name: ALERT,
    topics.RETRAIN_REQUESTS.name: RETRAIN_REQUEST,
    topics.MODEL_DEPLOYMENTS.name: DEPLOYMENT_EVENT,
    topics.SHADOW_COMPARISONS.name: SHADOW_COMPARISON,
    topics.DRIFT_PARTIALS.name: DRIFT_PARTIAL,
}

_HISTORY_NAME = re.compile(r"^(?P<stem>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one record's schema.

    :param record_type: short record name, e.g. ``InferenceEvent``.
    :param version: release number; the current schema has the highest.
    :param raw: the schema as written in its ``.avsc`` file.
    :param parsed: fastavro's parsed form, ready for its reader and writer.
    :param canonical: the Avro Parsing Canonical Form (what fingerprints hash).
    :param fingerprint: 8-byte CRC-64-AVRO fingerprint, little-endian as on the wire.
    :param current: whether this is the version producers write today.
    """

    record_type: str
    version: int
    raw: dict[str, Any]
    parsed: dict[str, Any]
    canonical: str
    fingerprint: bytes
    current: bool

    @property
    def full_name(self) -> str:
        """``io.driftline.<record_type>``: also the Schema Registry subject."""
        return f"{NAMESPACE}.{self.record_type}"


def stem_of(record_type: str) -> str:
    """File stem of a record type: ``InferenceEvent`` -> ``inference_event``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", record_type).lower()


def parse(raw: dict[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of ``raw`` (each call parses into its own named-type scope)."""
    parsed = parse_schema(raw, named_schemas={})
    if not isinstance(parsed, dict):
        raise ConfigurationError("a Driftline schema must be a record")
    return parsed


def fingerprint_of(raw: dict[str, Any]) -> tuple[str, bytes]:
    """Parsing Canonical Form and its CRC-64-AVRO fingerprint (wire byte order)."""
    canonical = str(to_parsing_canonical_form(parse(raw)))
    # fastavro returns the fingerprint's little-endian bytes as hex: the wire order.
    return canonical, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _version(record_type: str, version: int, raw: dict[str, Any], current: bool) -> SchemaVersion:
    canonical, fp = fingerprint_of(raw)
    return SchemaVersion(record_type, version, raw, parse(raw), canonical, fp, current)


@dataclass(frozen=True)
class Catalog:
    """Every shipped schema version, by record type and by fingerprint."""

    versions: tuple[SchemaVersion, ...]

    def current(self, record_type: str) -> SchemaVersion:
        """The version producers write today.

        :raises ConfigurationError: ``record_type`` is not a Driftline record.
        """
        for v in self.versions:
            if v.current and v.record_type == record_type:
                return v
        raise ConfigurationError(
            f"unknown record type {record_type!r}; known: {', '.join(RECORD_TYPES)}"
        )

    def history(self, record_type: str) -> list[SchemaVersion]:
        """Every released version of ``record_type`` (from history/), oldest first."""
        return sorted(
            (v for v in self.versions if v.record_type == record_type and not v.current),
            key=lambda v: v.version,
        )

    def by_fingerprint(self) -> dict[bytes, SchemaVersion]:
        """Fingerprint -> version; the current version wins a tie with a history copy."""
        table: dict[bytes, SchemaVersion] = {}
        for v in sorted(self.versions, key=lambda v: v.current):
            table[v.fingerprint] = v
        return table


def _load_json(path: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def load_catalog() -> Catalog:
    """Load and parse every ``.avsc`` shipped in the package (once per process).

    :raises ConfigurationError: a schema file is missing, misnamed or its record name
        does not match its file name.
    """
    root = resources.files("schemas") / "avro"
    by_stem = {stem_of(t): t for t in RECORD_TYPES}
    versions: list[SchemaVersion] = []
    released: dict[str, int] = {}
    for entry in (root / "history").iterdir():
        match = _HISTORY_NAME.match(entry.name)
        if entry.name.endswith(".avsc"):
            if not match or match["stem"] not in by_stem:
                raise ConfigurationError(f"unexpected schema file in history: {entry.name}")
            record_type = by_stem[match["stem"]]
            version = int(match["version"])
            versions.append(_version(record_type, version, _load_json(entry), False))
            released[record_type] = max(released.get(record_type, 0), version)
    for stem, record_type in by_stem.items():
        raw = _load_json(root / f"{stem}.avsc")
        if raw.get("name") != record_type or raw.get("namespace") != NAMESPACE:
            raise ConfigurationError(f"{stem}.avsc must define {NAMESPACE}.{record_type}")
        versions.append(_version(record_type, released.get(record_type, 0), raw, True))
    return Catalog(tuple(versions))
