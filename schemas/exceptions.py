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
