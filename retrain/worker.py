"""The retrain worker: a consumer group on ``retrain.requests`` (``driftline retrain run``).

Requests are keyed by model name, so one model's requests arrive in order on one
partition. For each record: decode (an undecodable one goes to the dead-letter topic
with its reason, and is committed past), hand it to :class:`~retrain.handler.RetrainHandler`,
and commit its offset only after the outcome is recorded. When the handler cannot finish
(another worker holds the model's lock, or Redis, MLflow or Kafka is away) the consumer
seeks back to the record and retries after ``retry_backoff_s``, without limit; any other
error is retried ``max_attempts`` times in a row, then the request goes to the dead-letter
topic (``processing_failed``) and is committed past (:mod:`retrain.retry_policy`), so a bug
on one request never stalls its partition. A worker that dies is replaced by the group,
which re-reads the uncommitted request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from retrain import metrics as m
from retrain.handler import RetrainHandler
from retrain.job import RetrainJob, RetrainOutcome
from retrain.retry_policy import FailureCounter, dead_letter_if_exhausted
from retrain.settings import RetrainSettings
from schemas.catalog import RETRAIN_REQUEST
from schemas.codec import Codec, make_codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, once_assigned, producer_config
from schemas.model_registry import ModelStore
from schemas.redaction import redact_credentials
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from schemas.topics import DEAD_LETTERS, RETRAIN_REQUESTS

log = logging.getLogger(__name__)

OutcomeHook = Callable[[RetrainOutcome], None]


def make_handler(
    settings: RetrainSettings,
    kafka: KafkaSettings,
    redis_settings: RedisSettings,
    store: ModelStore,
    codec: Codec | None = None,
) -> RetrainHandler:
    """A handler wired to real Redis, MLflow and Kafka."""
    client = redis.Redis.from_url(redis_settings.url.get_secret_value(), socket_timeout=5.0)
    job = RetrainJob(settings, kafka, store, RolloutStore(client), codec or make_codec())
    return RetrainHandler(settings, client, store, job)


class RetrainWorker:
    """Consume, handle, commit; until :meth:`stop`.

    :param on_outcome: called with every outcome (the CLI prints it; tests count it).
    :param retry_backoff_s: wait before retrying a request that could not finish.
    :param on_joined: called once, when the consumer first gets its partitions (the CLI
        prints its "consuming" line then, which the launcher waits for).
    """

    def __init__(
        self,
        settings: RetrainSettings,
        kafka: KafkaSettings,
        handler: RetrainHandler,
        codec: Codec | None = None,
        on_outcome: OutcomeHook | None = None,
        retry_backoff_s: float = 2.0,
        on_joined: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_joined = on_joined
        self.kafka = kafka
        self.handler = handler
        self.codec = codec or make_codec()
        self.on_outcome = on_outcome
        self.retry_backoff_s = retry_backoff_s
        self.topic = RETRAIN_REQUESTS.prefixed(kafka.topic_prefix).name
        self._stop = threading.Event()
        self.handled = 0
        self.failures = FailureCounter(settings.max_attempts)
        self.dead_lettered = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """The loop; returns after :meth:`stop` (the consumer leaves its group cleanly)."""
        consumer = Consumer(consumer_config(self.kafka, self.settings.group_id))
        dead_letters = DeadLetterRouter(
            Producer(producer_config(self.kafka)),
            DEAD_LETTERS.prefixed(self.kafka.topic_prefix).name,
            self.settings.group_id,
        )
        decoder = RecordDecoder(self.codec, dead_letters, {self.topic: RETRAIN_REQUEST})
        consumer.subscribe([self.topic], on_assign=once_assigned(self.on_joined))
        try:
            while not self._stop.is_set():
                msg = consumer.poll(self.settings.poll_timeout_s)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if err.fatal() or not err.retriable():
                        raise KafkaException(err)
                    continue
                self._one(consumer, decoder, dead_letters, msg)
        finally:
            consumer.close()

    def _one(
        self,
        consumer: Consumer,
        decoder: RecordDecoder,
        dead_letters: DeadLetterRouter,
        msg: Message,
    ) -> None:
        decoded = decoder.decode_one(msg)
        if decoded is None:  # routed to dead letters: make sure they are there, then move on
            dead_letters.flush()
            consumer.commit(message=msg, asynchronous=False)
            return
        try:
            outcome = self.handler.handle(decoded.value)
        except Exception as exc:
            if dead_letter_if_exhausted(self.failures, dead_letters, msg, exc):
                log.error(
                    "request at %s[%s]@%s failed %d times in a row (%s: %s): sent to the "
                    "dead-letter topic, moving on",
                    msg.topic(), msg.partition(), msg.offset(), self.failures.max_attempts,
                    type(exc).__name__, redact_credentials(str(exc)),
                )  # fmt: skip
                consumer.commit(message=msg, asynchronous=False)
                self.dead_lettered += 1
                return
            self._retry_later(consumer, msg, exc)
            return
        self.failures.forget(msg.topic() or "", msg.partition() or 0)
        consumer.commit(message=msg, asynchronous=False)
        self.handled += 1
        m.RETRAINS.labels(str(decoded.value["model_name"]), m.outcome_label(outcome.status)).inc()
        log.info(
            "request %s for %s: %s %s",
            decoded.value["idempotency_key"], decoded.value["model_name"], outcome.status,
            outcome.detail,
        )  # fmt: skip
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _retry_later(self, consumer: Consumer, msg: Message, exc: BaseException) -> None:
        """Not committed: seek back to the record and try again after the backoff."""
        log.warning(
            "request at %s[%s]@%s not finished (%s: %s); retrying in %.1f s",
            msg.topic(), msg.partition(), msg.offset(), type(exc).__name__,
            redact_credentials(str(exc)),
            self.retry_backoff_s,
        )  # fmt: skip
        consumer.seek(TopicPartition(msg.topic() or "", msg.partition() or 0, msg.offset() or 0))
        self._stop.wait(self.retry_backoff_s)
