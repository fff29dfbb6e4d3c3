"""Which failures of a Kafka record are retried for ever, and when one is given up on.

The retrain worker and the canary controller seek back to a record whose processing
raised and read it again after a back-off. That is right while a dependency is away
(Redis, MLflow, Kafka, another worker's lock): the record is fine and will succeed later.
It is wrong for a bug that fails on this one record every time: the partition would stall
for ever behind it. So a failure is either *transient* (retried without limit) or counts
towards a bound; after ``max_attempts`` consecutive counted failures of the same record
(topic, partition, offset) it goes to the dead-letter topic with reason
``processing_failed`` and the consumer moves past it.
"""

from __future__ import annotations

from typing import Final

import redis
from confluent_kafka import KafkaException

from retrain.exceptions import LockBusyError, LockLostError
from schemas.dead_letters import DeadLetterRouter, SourceRecord
from schemas.exceptions import BrokerUnavailableError, DeliveryError
from schemas.redaction import redact_credentials

#: The dead-letter reason of a record given up on after ``max_attempts`` failures.
PROCESSING_FAILED: Final = "processing_failed"

#: A dependency is away or busy: nothing is wrong with the record, so retry it without limit.
_TRANSIENT: Final = (
    LockBusyError,
    LockLostError,
    DeliveryError,
    BrokerUnavailableError,
    redis.RedisError,
    KafkaException,
    OSError,
)


#: MLflow error codes that say the request itself is wrong (a deleted run, a bad value, a
#: missing or duplicate resource): the same request fails the same way every time. Any
#: other MLflow error (``INTERNAL_ERROR``, which is also what an unreachable server gives,
#: ``TEMPORARILY_UNAVAILABLE``, a refused token, ...) means MLflow is away or misconfigured.
_MLFLOW_PERMANENT: Final = frozenset({
    "INVALID_PARAMETER_VALUE", "MALFORMED_REQUEST", "BAD_REQUEST", "INVALID_STATE",
    "INVALID_STATE_TRANSITION", "RESOURCE_DOES_NOT_EXIST", "NOT_FOUND",
    "RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "NOT_IMPLEMENTED",
})  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says a dependency is away (Redis, MLflow, Kafka, the model's lock).

    MLflow's errors count as transient (MLflow is away), except those whose code says the
    request is wrong (:data:`_MLFLOW_PERMANENT`): retried for ever, one such request (e.g.
    naming a deleted run: ``INVALID_PARAMETER_VALUE``) blocked its partition for good.
    mlflow is imported here only, not at module import, as the handler does: it is slow
    to import.
    """
    if isinstance(exc, _TRANSIENT):
        return True
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code not in _MLFLOW_PERMANENT


class ProcessingFailedError(Exception):
    """A record failed ``attempts`` times in a row: the dead letter's reason and detail.

    Not raised; handed to :meth:`schemas.dead_letters.DeadLetterRouter.route`. The detail
    names the last exception's type and its message with credentials masked.
    """

    reason = PROCESSING_FAILED

    def __init__(self, exc: BaseException, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(
            f"{type(exc).__name__}: {redact_credentials(str(exc))} "
            f"(failed {attempts} times in a row; not retried further)"
        )


class FailureCounter:
    """Consecutive non-transient failures of the record at the head of each partition.

    A consumer retries only the record it sought back to, so one entry per (topic,
    partition) is enough: a failure at a new offset starts that partition's count again,
    and the map never grows past the number of partitions.
    """

    def __init__(self, max_attempts: int) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self._heads: dict[tuple[str, int], tuple[int, int]] = {}

    def failed(self, topic: str, partition: int, offset: int) -> int:
        """Count one more failure of the record; return how many in a row it has now."""
        last_offset, count = self._heads.get((topic, partition), (offset, 0))
        count = count + 1 if last_offset == offset else 1
        self._heads[(topic, partition)] = (offset, count)
        return count

    def forget(self, topic: str, partition: int) -> None:
        """The partition's head record succeeded or was dead-lettered: start afresh."""
        self._heads.pop((topic, partition), None)


def dead_letter_if_exhausted(
    counter: FailureCounter,
    dead_letters: DeadLetterRouter,
    record: SourceRecord,
    exc: BaseException,
) -> bool:
    """Count ``exc``'s failure of ``record``; once it has failed ``max_attempts`` times in a
    row, send it to the dead-letter topic (flushed, so the caller may commit past it).

    :returns: True when the record was dead-lettered (move on), False to retry it (also
        when the dead letter was not acknowledged: Kafka is away, so the record is retried
        and dead-lettered again at its next failure).
    """
    topic, partition, offset = record.topic() or "", record.partition() or 0, record.offset() or 0
    if is_transient(exc):
        return False
    attempts = counter.failed(topic, partition, offset)
    if attempts < counter.max_attempts:
        return False
    try:
        dead_letters.route(record, ProcessingFailedError(exc, attempts))
        dead_letters.flush()
    except (DeliveryError, KafkaException):
        return False
    counter.forget(topic, partition)
    return True
