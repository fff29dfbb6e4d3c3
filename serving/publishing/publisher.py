"""Send InferenceEvents to Kafka without ever holding a request.

``publish()`` only appends the event to a bounded in-memory queue (a lock, a deque
append): the request goes on. One worker thread owns a confluent-kafka ``Producer``
(built by :func:`schemas.kafka_config.producer_config`), encodes with the codec and
produces asynchronously. Delivery is at least once; ``event_id`` is the natural key
consumers de-duplicate on.

When the broker is away (``_ALL_BROKERS_DOWN``, or any delivery failure):

1. the worker marks the broker down, purges librdkafka's queue and writes those events
   to the on-disk spool (:class:`~serving.publishing.spool.DiskSpool`);
2. new events wait in memory, up to ``buffer_max_events``; beyond that ``publish()``
   writes them straight to the spool;
3. when the spool is full too, the event is dropped: counted
   (``serving_app_events_dropped_total{reason="spool_full"}``) and logged, never silent;
4. the worker probes the broker every ``probe_interval_s``; once it answers and the topic
   exists, it starts a fresh producer (a restarted embedded broker has forgotten the old
   producer id, and librdkafka's idempotent producer would otherwise stall), replays the
   spool oldest segment first, and sends what waited in memory.

:meth:`EventPublisher.close` flushes for a bounded time and spools whatever is left, so
the next start delivers it.

Why not :class:`schemas.sdk.DriftlineProducer`: it validates every record in Python
(~50 us per event, a third of a prediction), its ``send`` sleeps while librdkafka's
queue is full, and it cannot be rebuilt after the broker forgets it. Serving builds its
records from values it has already checked, so it encodes with ``check=False``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.catalog import INFERENCE_EVENT
from schemas.codec import Codec, make_codec
from schemas.kafka_config import producer_config
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.publishing.spool import DiskSpool

log = logging.getLogger(__name__)

#: Errors after which retrying cannot help: the event is dropped (and counted).
_PERMANENT = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD})


@dataclass
class PublisherStats:
    """Running totals, mirrored into Prometheus by :class:`serving.metrics.ServingMetrics`.

    :param published: events Kafka acknowledged.
    :param failed: delivery attempts that failed (the event was spooled for a retry).
    :param spooled: events written to the disk spool.
    :param dropped: events lost on purpose (spool full, or refused by Kafka for good).
    """

    published: int = 0
    failed: int = 0
    spooled: int = 0
    dropped: int = 0


class PublisherHooks:
    """Called on every count change; serving's metrics subclass it. No-ops by default."""

    def on_published(self) -> None: ...
    def on_failed(self) -> None: ...
    def on_spooled(self) -> None: ...
    def on_dropped(self, reason: str) -> None: ...


@dataclass
class _Segment:
    """A spool segment being replayed: deleted once every record is resolved."""

    path: Path
    outstanding: int


class EventPublisher:
    """Bounded, never-blocking publisher of InferenceEvents with a disk spool.

    :param kafka: broker and client settings; the topic is ``inference.events`` with
        the configured prefix, the key is the model name.
    :param spool: where events go while the broker is away.
    :param buffer_max_events: events held in memory (and in librdkafka's queue).
    :param delivery_timeout_s: librdkafka ``message.timeout.ms``.
    :param linger_ms: librdkafka ``linger.ms``; 50 rather than the shared 5 because a
        produce request per few events costs serving ~2x the CPU per event.
    :param probe_interval_s: how often a down broker is asked whether it is back.
    :param batch_interval_s: how long the worker sleeps when the queue is empty; events
        wait at most this long before librdkafka has them (whose own linger is 5 ms).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        spool: DiskSpool,
        *,
        buffer_max_events: int = 10_000,
        delivery_timeout_s: float = 10.0,
        linger_ms: int = 50,
        probe_interval_s: float = 1.0,
        batch_interval_s: float = 0.005,
        codec: Codec | None = None,
        hooks: PublisherHooks | None = None,
    ) -> None:
        self.topic = INFERENCE_EVENTS.prefixed(kafka.topic_prefix).name
        self.spool = spool
        self.buffer_max_events = buffer_max_events
        self.probe_interval_s = probe_interval_s
        self.batch_interval_s = batch_interval_s
        self.codec = codec or make_codec()
        self.hooks = hooks or PublisherHooks()
        self.stats = PublisherStats()
        self._conf: dict[str, Any] = {
            **producer_config(
                kafka,
                **{
                    "message.timeout.ms": int(delivery_timeout_s * 1000),
                    "linger.ms": linger_ms,
                    "queue.buffering.max.messages": buffer_max_events,
                    # Topics are declared and created explicitly, never by a producer.
                    "allow.auto.create.topics": False,
                },
            ),
            "error_cb": self._on_client_error,
        }
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._up = threading.Event()
        self._closed = False
        self._purge_pending = False
        self._last_probe = 0.0
        self._producer = Producer(self._conf)
        self._replaying: _Segment | None = None
        self._thread = threading.Thread(target=self._run, name="serving-publisher", daemon=True)

    # -- the request side ------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; it first checks the broker (events queue meanwhile)."""
        self._thread.start()

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one event; never waits for the broker. Overflow goes to the spool."""
        with self._lock:
            if not self._closed and len(self._queue) < self.buffer_max_events:
                self._queue.append(event)
                queued = True
            else:
                queued = False
        if not queued:
            self._spool_event(event)

    @property
    def broker_up(self) -> bool:
        """Whether the broker answered and deliveries are flowing."""
        return self._up.is_set()

    def queued(self) -> int:
        """Events waiting in this publisher's memory queue (not yet handed to librdkafka)."""
        return len(self._queue)

    def pending(self) -> int:
        """Events in memory: queued here plus inside librdkafka (which also counts its own
        outstanding requests, so this is an upper bound)."""
        return len(self._queue) + len(self._producer)

    # -- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._up.is_set():
                    busy = self._send_queue()
                    busy = self._replay_step() or busy
                    self._producer.poll(0)
                    if not busy:
                        # Drain in batches every ``batch_interval_s`` instead of waking per
                        # event: at hundreds of requests/s a wake-up per event costs the
                        # request thread GIL hand-offs (measured in bench_serving).
                        self._stop.wait(self.batch_interval_s)
                else:
                    self._while_down()
            except Exception:  # a bug here must not stop publishing for good
                log.exception("publisher worker error; continuing")
                time.sleep(0.1)

    def _send_queue(self) -> bool:
        sent = 0
        while self._up.is_set() and sent < 1000:
            try:
                event = self._queue.popleft()
            except IndexError:
                break
            key = event["model_name"].encode()
            try:
                value = self.codec.encode(INFERENCE_EVENT, event, check=False)
            except Exception as exc:  # a record serving built wrongly: say so, count it
                log.error("could not encode event %s: %s", event.get("request_id"), exc)
                self._drop("unencodable")
                continue
            if not self._produce(key, value, None):
                self._queue.appendleft(event)  # librdkafka is full: wait for deliveries
                self._producer.poll(0.05)
                break
            sent += 1
        return sent > 0

    def _produce(self, key: bytes, value: bytes, segment: _Segment | None) -> bool:
        try:
            self._producer.produce(
                self.topic, value=value, key=key, on_delivery=partial(self._delivered, segment)
            )
        except BufferError:
            return False
        return True

    def _delivered(self, segment: _Segment | None, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.published += 1
            self.hooks.on_published()
        else:
            self.stats.failed += 1
            self.hooks.on_failed()
            key, value = msg.key() or b"", msg.value() or b""
            if err.code() in _PERMANENT:
                log.error("Kafka refused an event for good (%s); dropped", err)
                self._drop("rejected")
            else:
                self._spool_bytes(key, value)
                self._mark_down(str(err))
        if segment is not None:
            segment.outstanding -= 1
            if segment.outstanding <= 0:
                self.spool.remove(segment.path)
                if self._replaying is segment:
                    self._replaying = None

    def _replay_step(self) -> bool:
        if self._replaying is not None or not self.spool.has_records():
            return False
        taken = self.spool.take_oldest()
        if taken is None:
            return False
        path, records = taken
        if not records:
            self.spool.remove(path)
            return True
        segment = _Segment(path, len(records))
        self._replaying = segment
        log.info("replaying %d spooled events from %s", len(records), path.name)
        for i, (key, value) in enumerate(records):
            while not self._produce(key, value, segment):
                self._producer.poll(0.05)
                if not self._up.is_set() or self._stop.is_set():
                    # Broker gone again (or shutting down): the rest goes back to the spool.
                    for rest_key, rest_value in records[i:]:
                        self._spool_bytes(rest_key, rest_value)
                    segment.outstanding -= len(records) - i
                    if segment.outstanding <= 0:
                        self.spool.remove(path)
                        self._replaying = None
                    return True
        return True

    def _while_down(self) -> None:
        if self._purge_pending:
            # Undelivered events come back through their callbacks (with a purge error)
            # and are spooled there.
            self._purge_pending = False
            self._producer.purge()
        self._producer.poll(0.1)
        now = time.monotonic()
        if now - self._last_probe < self.probe_interval_s:
            return
        self._last_probe = now
        if self._broker_answers():
            self._producer.purge()
            self._producer.flush(0)
            self._producer = Producer(self._conf)
            self._up.set()
            log.warning(
                "Kafka is reachable again; replaying %d spooled bytes", self.spool.size_bytes
            )

    def _broker_answers(self) -> bool:
        try:
            metadata = self._producer.list_topics(timeout=1.0)
        except KafkaException:
            return False
        if not metadata.brokers:
            return False
        if self.topic not in metadata.topics:
            log.warning("topic %s does not exist yet; events keep spooling", self.topic)
            return False
        return True

    def _on_client_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN or err.fatal():
            self._mark_down(str(err))

    def _mark_down(self, reason: str) -> None:
        if self._up.is_set():
            log.warning("Kafka unreachable (%s): events go to memory, then the spool", reason)
            self._up.clear()
            self._purge_pending = True
            self._last_probe = time.monotonic()

    # -- spooling and dropping --------------------------------------------------------

    def _spool_event(self, event: dict[str, Any]) -> None:
        try:
            value = self.codec.encode(INFERENCE_EVENT, event, check=False)
        except Exception as exc:
            log.error("could not encode event %s: %s", event.get("request_id"), exc)
            self._drop("unencodable")
            return
        self._spool_bytes(event["model_name"].encode(), value)

    def _spool_bytes(self, key: bytes, value: bytes) -> None:
        if self.spool.append(key, value):
            with self._lock:
                self.stats.spooled += 1
            self.hooks.on_spooled()
        else:
            self._drop("spool_full")

    def _drop(self, reason: str) -> None:
        with self._lock:
            self.stats.dropped += 1
            dropped = self.stats.dropped
        self.hooks.on_dropped(reason)
        if dropped == 1 or dropped % 1000 == 0:
            log.error(
                "dropped %d events so far (latest: %s); spool %d of %d bytes",
                dropped, reason, self.spool.size_bytes, self.spool.max_bytes,
            )  # fmt: skip

    # -- shutdown ----------------------------------------------------------------------

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop the worker, deliver what is pending within ``timeout_s``, spool the rest.

        Returns how many events went to the spool at shutdown (delivered on next start).
        """
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        deadline = time.monotonic() + timeout_s
        spooled_before = self.stats.spooled
        if not self._up.is_set() and self._broker_answers():
            self._producer = Producer(self._conf)
            self._up.set()
        while self._queue and self._up.is_set() and time.monotonic() < deadline:
            self._send_queue()
        self._producer.flush(max(0.0, deadline - time.monotonic()))
        if len(self._producer):
            self._producer.purge()
            self._producer.flush(0)  # serves the purge callbacks: they spool each event
        while self._queue:
            self._spool_event(self._queue.popleft())
        self.spool.close()
        return self.stats.spooled - spooled_before
