"""The root of Driftline's error hierarchy.

Every package's own ``exceptions.py`` derives from :class:`DriftlineError`, so a caller
can catch everything Driftline raises on purpose with one ``except`` while letting real
bugs (``TypeError``, ``KeyError``...) through.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base class of every error Driftline raises deliberately."""


class ConfigurationError(DriftlineError):
    """A setting is missing, malformed, or contradicts another."""


class BrokerUnavailableError(DriftlineError):
    """The Kafka cluster did not answer within the allotted time."""


class TopicMismatchError(DriftlineError):
    """An existing topic differs from its declaration (partitions or cleanup policy).

    Driftline never alters an existing topic on its own: repartitioning changes which
    partition a key lands on, so the operator must decide.
    """

    def __init__(self, mismatches: list[str]) -> None:
        self.mismatches = mismatches
        super().__init__(
            "existing topics differ from their declaration in schemas/topics.py: "
            + "; ".join(mismatches)
        )


class RecordValidationError(DriftlineError):
    """A record does not match its schema or Driftline's rules (e.g. NaN in a feature).

    Raised before anything is sent, so the message names the exact field, as a path
    such as ``features['age']`` or ``evidence.scores['psi']``.
    """

    def __init__(self, record_type: str, field: str, problem: str) -> None:
        self.record_type = record_type
        self.field = field
        self.problem = problem
        super().__init__(f"{record_type}.{field}: {problem}")


class DecodeError(DriftlineError):
    """A record's bytes could not be turned into a valid Driftline record.

    ``reason`` is a short, stable code: it becomes the dead-letter header and the
    label of the dead-letter counter, so dashboards can group by it.
    """

    reason = "undecodable"


class BadMagicError(DecodeError):
    """The record does not start with the encoding's marker bytes (not ours, or not Avro)."""

    reason = "bad_magic"


class UnknownSchemaError(DecodeError):
    """The record names a writer schema (fingerprint or registry id) this reader does not know."""

    reason = "unknown_schema"


class TruncatedRecordError(DecodeError):
    """The bytes end before the record does."""

    reason = "truncated"


class MalformedRecordError(DecodeError):
    """The bytes are not a valid encoding of the writer schema (bad UTF-8, index, extra bytes)."""

    reason = "malformed"


class SchemaMismatchError(DecodeError):
    """The writer schema cannot be resolved to the reader's (e.g. a required field is missing)."""

    reason = "schema_mismatch"


class WrongRecordTypeError(DecodeError):
    """A valid record of a type the topic does not carry."""

    reason = "wrong_record_type"


class InvalidRecordError(DecodeError):
    """The record decodes but breaks a rule (NaN or infinity where not allowed)."""

    reason = "invalid_value"

    def __init__(self, cause: RecordValidationError) -> None:
        self.cause = cause
        super().__init__(str(cause))


class SchemaRegistryError(DriftlineError):
    """The Schema Registry refused or could not be reached."""


class DeliveryError(DriftlineError):
    """Kafka did not acknowledge a record (or records) the caller sent."""


class ModelNotFoundError(DriftlineError):
    """The model registry has no such model, version or alias."""
