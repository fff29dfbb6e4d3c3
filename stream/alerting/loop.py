"""The Kafka side of the alert evaluator: DriftScores and SloWindows in (and rejected
DeploymentEvents, :mod:`stream.alerting.rejections`); Alert records, RetrainRequests and
Alertmanager posts out.

One iteration::

    consume (drift.scores + slo.windows) -> decode (bad records to dead letters)
    -> Evaluator.observe -> per transition: Alert record (key: fingerprint),
       RetrainRequest when the rule asks (key: model), notice to the sender
    -> flush -> commit

Offsets are committed only after the records they caused are acknowledged. The
Alertmanager sender runs in its own thread, so an unreachable Alertmanager never slows
this loop. The evaluator's state is rebuilt on start: each assigned partition is re-read
from ``replay_s`` before its committed offset with outputs suppressed (notices still go
to Alertmanager, which de-duplicates by labels), so a restart neither forgets a pending
breach nor emits a transition twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from schemas.catalog import ALERT, DEPLOYMENT_EVENT, DRIFT_SCORE, RETRAIN_REQUEST
from schemas.codec import Codec
from schemas.consumer import DecodedRecord, RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.exceptions import DeliveryError
from stream.alerting import metrics as m
from stream.alerting.alerts import notice, retrain_request
from stream.alerting.evaluator import Evaluator, Observation, Transition
from stream.alerting.rejections import rejection_notice
from stream.alerting.sender import AlertmanagerSender
from stream.exceptions import UnprocessableRecordError

log = logging.getLogger(__name__)


@dataclass
class AlertLoopStats:
    """Counts of one run, for logs and tests."""

    records: int = 0
    replayed: int = 0
    dead_letters: int = 0
    alerts: int = 0
    rejections: int = 0
    retrain_requests: int = 0
    commits: int = 0


class AlertLoop:
    """Run an :class:`Evaluator` on drift.scores and slo.windows until :meth:`stop`.

    :param sender: posts to Alertmanager; None sends alerts to the alerts topic only.
    :param replay_s: how far before the committed offsets to re-read on assignment.
    :param deployments_topic: ``model.deployments``, whose ``rejected`` events become
        ``RetrainCandidateRejected`` alerts ending ``rejection_ttl_s`` after the event;
        None: not consumed.
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        evaluator: Evaluator,
        codec: Codec,
        decoder: RecordDecoder,
        *,
        drift_topic: str,
        slo_topic: str,
        alerts_topic: str,
        retrain_topic: str,
        dead_letters: DeadLetterRouter,
        sender: AlertmanagerSender | None = None,
        batch_size: int = 500,
        poll_timeout_s: float = 0.5,
        replay_s: float = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
        deployments_topic: str | None = None,
        rejection_ttl_s: float = 6 * 3600.0,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.evaluator = evaluator
        self.codec = codec
        self.decoder = decoder
        self.drift_topic = drift_topic
        self.slo_topic = slo_topic
        self.alerts_topic = alerts_topic
        self.retrain_topic = retrain_topic
        self.dead_letters = dead_letters
        self.sender = sender
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.replay_s = replay_s
        self.clock = clock
        self.deployments_topic = deployments_topic
        self.rejection_ttl_s = rejection_ttl_s
        self.stats = AlertLoopStats()
        self._stopping = threading.Event()
        self._to_restore: set[tuple[str, int]] = set()
        #: (topic, partition) -> committed offset: records before it are replays.
        self._resume_at: dict[tuple[str, int], int] = {}
        self._delivery_errors: list[str] = []

    def stop(self) -> None:
        """Finish the batch, commit and return (signal-handler safe)."""
        self._stopping.set()

    def run(self, max_idle_polls: int | None = None) -> AlertLoopStats:
        """Consume until :meth:`stop` (or ``max_idle_polls`` empty polls in a row)."""
        topics = [self.drift_topic, self.slo_topic]
        if self.deployments_topic is not None:
            topics.append(self.deployments_topic)
        self.consumer.subscribe(
            topics, on_assign=self._on_assign,
            on_revoke=self._on_revoke, on_lost=self._on_revoke,
        )  # fmt: skip
        if self.sender is not None:
            self.sender.start()
        idle = 0
        try:
            while not self._stopping.is_set():
                got = self.step()
                idle = 0 if got else idle + 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    break
        finally:
            self.consumer.close()
            if self.sender is not None:
                self.sender.close()
        return self.stats

    # -- one iteration ----------------------------------------------------------------

    def step(self) -> int:
        """Consume, evaluate, emit, flush and commit one batch; return records consumed."""
        messages = self.consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout_s)
        messages = [m for m in messages if not _missing_topic(m)]
        if self._to_restore:
            restoring = set(self._to_restore)
            self._restore()
            messages = [m for m in messages if (m.topic(), m.partition()) not in restoring]
        batch = self.decoder.decode_batch(messages)
        self.stats.dead_letters += batch.dead_letters
        by_position = {(m.topic(), m.partition(), m.offset()): m for m in messages}
        for record in batch.records:
            self._handle(record, by_position[(record.topic, record.partition, record.offset)])
        self.producer.poll(0)
        if batch.records or batch.dead_letters:
            self._flush()
            self._commit()
        return len(batch.records) + batch.dead_letters

    def _handle(self, record: DecodedRecord, message: Message) -> None:
        replay = record.offset < self._resume_at.get((record.topic, record.partition), -1)
        if record.record_type == DEPLOYMENT_EVENT:
            self._deployment(record, message, replay)
            return
        source = "drift" if record.record_type == DRIFT_SCORE else "slo"
        m.RECORDS.labels(source).inc()
        try:
            obs = (
                Observation.from_drift_score(record.value)
                if source == "drift"
                else Observation.from_slo_window(record.value)
            )
            transitions = self.evaluator.observe(obs)
        except (KeyError, TypeError, ValueError) as exc:
            self.dead_letters.route(message, UnprocessableRecordError(repr(exc)))
            self.stats.dead_letters += 1
            return
        if replay:
            self.stats.replayed += 1
        else:
            self.stats.records += 1
        for transition in transitions:
            self._emit(transition, replay, f"{record.topic}[{record.partition}]@{record.offset}")

    def _emit(self, t: Transition, replay: bool, position: str) -> None:
        """Alert record, notice and (when the rule asks) RetrainRequest of one transition;
        ``position``: topic[partition]@offset of the window record that caused it."""
        n = notice(t, self.evaluator.config)
        if self.sender is not None:
            self.sender.submit(n)
        m.FIRING.labels(t.rule.alert, t.rule.severity).inc(1 if t.state == "firing" else -1)
        if replay:
            return
        m.TRANSITIONS.labels(t.rule.alert, t.rule.severity, t.state).inc()
        log.info("%s %s %s", t.state, t.rule.alert, t.labels)
        self._produce(self.alerts_topic, n.fingerprint, self.codec.encode(ALERT, n.to_record()))
        self.stats.alerts += 1
        if t.state == "firing" and t.rule.retrain:
            request = retrain_request(t, round(self.clock() * 1000))
            # lineage: the retrain run records which record of the evidence fired it
            request["evidence"]["details"]["evidence_record"] = position
            value = self.codec.encode(RETRAIN_REQUEST, request)
            self._produce(self.retrain_topic, t.observation.model, value)
            m.RETRAIN_REQUESTS.labels(t.rule.alert).inc()
            self.stats.retrain_requests += 1

    def _deployment(self, record: DecodedRecord, message: Message, replay: bool) -> None:
        """A ``rejected`` DeploymentEvent: alert (to Alertmanager while it has not ended,
        even in a replay, which Alertmanager de-duplicates) and, live, its Alert record."""
        m.RECORDS.labels("deployments").inc()
        base = self.evaluator.config.runbook_base_url
        try:
            n = rejection_notice(record.value, base, round(self.rejection_ttl_s * 1000))
        except (KeyError, TypeError, ValueError) as exc:
            self.dead_letters.route(message, UnprocessableRecordError(repr(exc)))
            self.stats.dead_letters += 1
            return
        if n is None:
            return
        ended = n.ends_at is not None and n.ends_at <= round(self.clock() * 1000)
        if self.sender is not None and not ended:
            self.sender.submit(n)
        if replay:
            self.stats.replayed += 1
            return
        self.stats.records += 1
        m.TRANSITIONS.labels(n.labels["alertname"], n.labels["severity"], n.state).inc()
        log.info("firing %s %s", n.labels["alertname"], n.labels)
        self._produce(self.alerts_topic, n.fingerprint, self.codec.encode(ALERT, n.to_record()))
        self.stats.alerts += 1
        self.stats.rejections += 1

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(
                    topic, value=value, key=key.encode(), on_delivery=self._delivered
                )
                return
            except BufferError:
                self.producer.poll(0.1)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def _commit(self) -> None:
        """Commit the consumed positions (after the outputs they caused are flushed)."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise
            return  # only replayed records: the committed offsets are already past them
        self.stats.commits += 1

    def _flush(self) -> None:
        self.dead_letters.flush()  # same producer: flushes alerts and requests too
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise DeliveryError(f"alert outputs refused: {errors[:5]}")

    # -- assignment and replay --------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._to_restore.update((tp.topic, tp.partition) for tp in partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._to_restore.discard((tp.topic, tp.partition))
            self._resume_at.pop((tp.topic, tp.partition), None)
        # Models are keyed to partitions; a revoked partition's models move elsewhere.
        # Keeping their state would only go stale, so all of it is dropped and rebuilt
        # by replay on the next assignment.
        if partitions:
            self.evaluator.states.clear()
            self.evaluator.seen.clear()
            m.FIRING.clear()  # rebuilt by the replay, like the states

    def _restore(self) -> None:
        """Seek each newly assigned partition ``replay_s`` back; note where replay ends."""
        wanted = sorted(self._to_restore)
        self._to_restore.clear()
        committed = self.consumer.committed([TopicPartition(t, p) for t, p in wanted], timeout=30)
        since_ms = round((self.clock() - self.replay_s) * 1000)
        try:
            starts = self.consumer.offsets_for_times(
                [TopicPartition(t, p, since_ms) for t, p in wanted], timeout=30
            )
        except KafkaException as exc:
            log.warning("offsets_for_times failed (%s); replaying from the beginning", exc)
            starts = [TopicPartition(t, p, OFFSET_BEGINNING) for t, p in wanted]
        start_of = {(tp.topic, tp.partition): tp.offset for tp in starts}
        for tp in committed:
            key = (tp.topic, tp.partition)
            # first offset at/after the look-back; OFFSET_END: nothing that recent
            found = start_of.get(key, OFFSET_BEGINNING)
            start = found
            if tp.offset >= 0:
                self._resume_at[key] = tp.offset
                if found == OFFSET_END:
                    start = tp.offset
                elif found >= 0:
                    start = min(found, tp.offset)
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, start))
            log.info(
                "%s[%d]: replay from %s, outputs from %s", tp.topic, tp.partition, start,
                tp.offset if tp.offset >= 0 else "there",
            )  # fmt: skip


def _missing_topic(message: Message) -> bool:
    """A subscribed topic that does not exist (yet): not fatal, the others still flow."""
    err = message.error()
    if err is None or err.code() not in (
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
    ):
        return False
    log.warning("%s; evaluating the topics that exist", err.str())
    return True
