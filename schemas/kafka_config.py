"""The one place that turns :class:`KafkaSettings` into librdkafka configuration.

Every producer, consumer and admin client in Driftline is built from these functions,
never from a dict written inline, so a broker quirk is worked around once and an
operator can override any property (``DRIFTLINE_KAFKA_*_OVERRIDES``) for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from schemas.settings import ClientProperties, KafkaSettings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, TopicPartition

#: How long librdkafka pauses fetching once its prefetch queue is full (its default: 1000).
FETCH_QUEUE_BACKOFF_MS = 20


def _common(settings: KafkaSettings) -> ClientProperties:
    conf: ClientProperties = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        conf["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username:
        conf["sasl.username"] = settings.sasl_username
    if settings.sasl_password is not None:
        conf["sasl.password"] = settings.sasl_password.get_secret_value()
    conf.update(settings.client_overrides)
    return conf


def admin_config(settings: KafkaSettings) -> ClientProperties:
    """Configuration for an ``AdminClient``."""
    return _common(settings)


def producer_config(settings: KafkaSettings, **extra: str | int | float | bool) -> ClientProperties:
    """Configuration for a ``Producer``.

    Idempotence is on: retries after a lost acknowledgement do not duplicate records.
    (confluent-kafka's idempotent producer works on the embedded broker; aiokafka's does
    not, which is one reason Driftline uses confluent-kafka.) ``acks=all`` because Kafka
    is the system of record.
    """
    conf = _common(settings)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    conf.update(settings.producer_overrides)
    conf.update(extra)
    return conf


def consumer_config(
    settings: KafkaSettings, group_id: str, **extra: str | int | float | bool
) -> ClientProperties:
    """Configuration for a ``Consumer`` in group ``group_id``.

    Auto-commit is off: Driftline commits offsets only after the outputs derived from
    them are produced, which is what makes a crash lose nothing. Isolation is
    ``read_uncommitted`` on purpose: Driftline uses no Kafka transactions (the embedded
    broker gives them no isolation anyway), exactly-once effects come from keyed outputs.

    ``fetch.queue.backoff.ms`` is 20, not librdkafka's 1000: once a consumer that is
    behind (a replay, a backlog) fills its prefetch queue (64 MB), librdkafka stops
    fetching for that long; a processor that drains the queue in less than a second then
    sits idle until the next fetch. Measured on the embedded broker, one core: a bare
    ``consume`` loop went from ~150,000 to ~500,000 messages/s, and the drift processor
    gained ~25 % (docs/benchmarks.md, 2026-11-30). The cost is a wake-up every 20 ms
    while the queue is full.
    """
    conf = _common(settings)
    conf.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": settings.heartbeat_interval_ms,
            "isolation.level": "read_uncommitted",
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        }
    )
    conf.update(settings.consumer_overrides)
    conf.update(extra)
    return conf


def once_assigned(
    callback: Callable[[], None] | None,
) -> Callable[[Consumer, list[TopicPartition]], None]:
    """An ``on_assign`` hook for ``Consumer.subscribe`` that calls ``callback`` once, at the
    first assignment: the moment a consumer has joined its group and really consumes.

    A consumer's "ready" line is printed from here, not before ``subscribe``: the first join
    takes about 3 s (the embedded broker holds it that long and describes the group as
    state ``unknown`` meanwhile), and a launcher or ``driftline health`` that trusted an
    earlier line saw a consumer that was not in its group yet.
    """
    done = False

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal done
        if not done and callback is not None:
            done = True
            callback()

    return on_assign
