"""Bounded retries: a record failing for a bug is dead-lettered after N tries, a record
failing because a dependency is away is retried for ever (retrain/retry_policy.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)

from retrain.exceptions import LockBusyError, ReplayError
from retrain.handler import RetrainHandler
from retrain.job import RetrainOutcome
from retrain.retry_policy import (
    PROCESSING_FAILED,
    FailureCounter,
    dead_letter_if_exhausted,
    is_transient,
)
from retrain.settings import RetrainSettings
from retrain.worker import RetrainWorker
from schemas import dead_letters as dl
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import SingleObjectCodec
from schemas.consumer import RecordDecoder
from schemas.exceptions import DeliveryError
from schemas.retrain_requests import retrain_request
from schemas.settings import KafkaSettings
from tests.unit.test_dead_letters import FakeMessage, RecordingProducer

CODEC = SingleObjectCodec()
KAFKA = KafkaSettings(topic_prefix="t.")
TOPIC = "t.retrain.requests"


@dataclass
class FakeConsumer:
    """Records what the worker asks of Kafka: commits and seeks."""

    commits: list[int] = field(default_factory=list)
    seeks: list[int] = field(default_factory=list)

    def commit(self, message: FakeMessage, asynchronous: bool) -> None:
        self.commits.append(message.offset())

    def seek(self, position: TopicPartition) -> None:
        self.seeks.append(position.offset)


@dataclass
class FailingHandler:
    """Raises ``error`` for the idempotency key ``poison``; every other request succeeds."""

    error: Exception
    calls: int = 0

    def handle(self, request: dict[str, Any]) -> RetrainOutcome:
        self.calls += 1
        if request["idempotency_key"] == "poison":
            raise self.error
        return RetrainOutcome("challenger", "run", "1")


def _request(offset: int, key: str) -> FakeMessage:
    value = CODEC.encode(RETRAIN_REQUEST, retrain_request("m", "drift", "t", idempotency_key=key))
    return FakeMessage(value, _topic=TOPIC, _partition=0, _offset=offset, _key=b"m")


def _worker(
    error: Exception, max_attempts: int = 3
) -> tuple[RetrainWorker, FakeConsumer, RecordDecoder, dl.DeadLetterRouter, RecordingProducer]:
    handler = cast(RetrainHandler, FailingHandler(error))
    settings = RetrainSettings(max_attempts=max_attempts)
    worker = RetrainWorker(settings, KAFKA, handler, CODEC, retry_backoff_s=0.0)
    producer = RecordingProducer()
    router = dl.DeadLetterRouter(producer, "t.dead.letters", "g")  # type: ignore[arg-type]
    decoder = RecordDecoder(CODEC, router, {TOPIC: RETRAIN_REQUEST})
    return worker, FakeConsumer(), decoder, router, producer


def _one(worker: RetrainWorker, consumer: FakeConsumer, decoder: RecordDecoder,
         router: dl.DeadLetterRouter, msg: FakeMessage) -> None:  # fmt: skip
    worker._one(consumer, decoder, router, msg)  # type: ignore[arg-type]


def test_a_record_failing_for_a_bug_is_dead_lettered_after_max_attempts_then_the_next_runs() -> (
    None
):
    error = ValueError("bug talking to http://u:hunter2@mlflow:5000/x")
    worker, consumer, decoder, router, producer = _worker(error, max_attempts=3)
    poison, good = _request(7, "poison"), _request(8, "good")
    for _ in range(2):
        _one(worker, consumer, decoder, router, poison)
    assert (consumer.seeks, consumer.commits, producer.sent) == ([7, 7], [], [])
    _one(worker, consumer, decoder, router, poison)  # third failure in a row: given up
    assert consumer.seeks == [7, 7] and consumer.commits == [7]
    (dead,) = producer.sent
    headers = dict(dead["headers"])
    assert headers[dl.REASON] == PROCESSING_FAILED.encode()
    detail = headers[dl.DETAIL].decode()
    assert detail.startswith("ValueError: bug talking to http://u:") and "3 times" in detail
    assert "hunter2" not in detail
    assert dead["value"] == poison.value() and headers[dl.SOURCE_OFFSET] == b"7"
    _one(worker, consumer, decoder, router, good)
    assert consumer.commits == [7, 8] and worker.handled == 1 and worker.dead_lettered == 1


@pytest.mark.parametrize(
    "error",
    [
        LockBusyError("busy"),
        redis.ConnectionError("redis away"),
        KafkaException(KafkaError(KafkaError._TRANSPORT)),
        DeliveryError("not acknowledged"),
        ConnectionRefusedError("mlflow away"),
        MlflowException("API request failed", error_code=TEMPORARILY_UNAVAILABLE),
        # what an MLflow server that is down gives: connection refused, wrapped
        MlflowException("API request to http://mlflow failed", error_code=INTERNAL_ERROR),
        MlflowException("token refused", error_code=PERMISSION_DENIED),  # fix the config
    ],
)
def test_a_dependency_being_away_is_retried_without_limit(error: Exception) -> None:
    worker, consumer, decoder, router, producer = _worker(error, max_attempts=2)
    poison = _request(3, "poison")
    for _ in range(20):
        _one(worker, consumer, decoder, router, poison)
    assert consumer.seeks == [3] * 20 and consumer.commits == [] and producer.sent == []


def test_only_consecutive_failures_of_the_same_record_count() -> None:
    counter = FailureCounter(3)
    assert [counter.failed("a", 0, 5) for _ in range(2)] == [1, 2]
    assert counter.failed("a", 1, 5) == 1  # another partition counts on its own
    assert counter.failed("a", 0, 6) == 1  # a new head record starts again
    counter.forget("a", 0)
    assert counter.failed("a", 0, 6) == 1
    with pytest.raises(ValueError, match="max_attempts"):
        FailureCounter(0)


def test_a_success_in_between_resets_the_count() -> None:
    worker, consumer, decoder, router, producer = _worker(ValueError("flaky"), max_attempts=2)
    handler = cast(FailingHandler, worker.handler)
    poison = _request(4, "poison")
    _one(worker, consumer, decoder, router, poison)
    handler.error = redis.TimeoutError("slow")  # transient: neither counts nor resets
    _one(worker, consumer, decoder, router, poison)
    worker.failures.forget(TOPIC, 0)  # what a success of the record does
    handler.error = ValueError("flaky")
    _one(worker, consumer, decoder, router, poison)
    assert producer.sent == [] and consumer.commits == []
    _one(worker, consumer, decoder, router, poison)
    assert len(producer.sent) == 1 and consumer.commits == [4]


def test_deterministic_errors_are_not_transient() -> None:
    for error in (
        ValueError("x"), KeyError("model_name"), ReplayError("ranges gone"),
        MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST),
        MlflowException("run must be active; it is deleted", error_code=INVALID_PARAMETER_VALUE),
        MlflowException("bad state", error_code=INVALID_STATE),
    ):  # fmt: skip
        assert not is_transient(error), error


def test_an_mlflow_error_about_the_request_is_dead_lettered_after_max_attempts() -> None:
    """INVALID_PARAMETER_VALUE (a request naming a deleted run) was retried for ever."""
    error = MlflowException("The run must be in the 'active' state", INVALID_PARAMETER_VALUE)
    worker, consumer, decoder, router, producer = _worker(error, max_attempts=3)
    poison = _request(5, "poison")
    for _ in range(3):
        _one(worker, consumer, decoder, router, poison)
    assert consumer.seeks == [5, 5] and consumer.commits == [5] and len(producer.sent) == 1


def test_a_dead_letter_kafka_refuses_leaves_the_record_to_be_retried() -> None:
    class Refusing(RecordingProducer):
        def flush(self, timeout: float = 0) -> int:
            return 1

    router = dl.DeadLetterRouter(Refusing(), "t.dead.letters")  # type: ignore[arg-type]
    counter = FailureCounter(1)
    msg = _request(9, "poison")
    assert not dead_letter_if_exhausted(counter, router, msg, ValueError("bug"))
    accepting = dl.DeadLetterRouter(RecordingProducer(), "d")  # type: ignore[arg-type]
    assert dead_letter_if_exhausted(counter, accepting, msg, ValueError("bug"))  # next failure
