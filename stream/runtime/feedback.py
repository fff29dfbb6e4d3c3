"""Read FeedbackEvents for the drift processor's join: every partition, from a lookback.

The feedback topic is keyed by request id, the inference topic by model, so the
partitions of one do not line up with the other: every drift instance reads **all**
feedback partitions (``assign``, no group membership, no commits) and the join keeps
what belongs to the models it counts. On start it seeks each partition to the first
record at or after ``now - lookback`` (broker timestamps): a restart replays the open
windows' predictions from the committed inference offsets, and this replays their
labels. (The embedded broker ignores the timestamp and answers offset 0: there it
reads the whole topic, which it keeps in memory only.)

Undecodable records, records of another type and FeedbackEvents without a request id
or model go to the dead-letter topic with the reason, like bad InferenceEvents.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from schemas.catalog import FEEDBACK_EVENT
from schemas.codec import Codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.exceptions import InvalidRecordError, RecordValidationError
from stream.feedback_join import Label

log = logging.getLogger(__name__)


class FeedbackReader:
    """Decoded FeedbackEvents from every partition of ``topic``.

    :param consumer: built with :func:`schemas.kafka_config.consumer_config` (its group
        is not joined: partitions are assigned, offsets never committed).
    :param lookback_s: how far back (broker timestamps) to start reading.
    """

    def __init__(
        self,
        consumer: Consumer,
        codec: Codec,
        *,
        topic: str,
        dead_letters: DeadLetterRouter,
        lookback_s: float,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.lookback_s = lookback_s
        self.decoder = RecordDecoder(codec, dead_letters, {topic: FEEDBACK_EVENT})
        self.dead_letters = dead_letters
        self.read_count = 0
        self.dead_letter_count = 0

    def start(self, timeout_s: float = 30.0) -> None:
        """Assign every partition of the topic at the lookback's offsets."""
        # all topics: asking for one may auto-create it with the broker's defaults
        topic = self.consumer.list_topics(timeout=timeout_s).topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            log.warning(
                "feedback topic %s not found: no labels are joined until a restart", self.topic
            )
            return
        partitions = sorted(topic.partitions)
        since = int((time.time() - self.lookback_s) * 1000)
        wanted = [TopicPartition(self.topic, p, since) for p in partitions]
        found = self.consumer.offsets_for_times(wanted, timeout=timeout_s)
        self.consumer.assign(
            [TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
             for tp in found]
        )  # fmt: skip

    def read(self, max_messages: int) -> list[Label]:
        """What has arrived (no waiting); bad records are routed to dead letters."""
        labels: list[Label] = []
        for message in self.consumer.consume(num_messages=max_messages, timeout=0):
            err = message.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                log.warning("feedback consumer error: %s", err)
                continue
            self.read_count += 1
            decoded = self.decoder.decode_one(message)
            if decoded is None:
                self.dead_letter_count += 1
                continue
            value = decoded.value
            empty = [f for f in ("request_id", "model_name") if not value[f]]
            if empty:
                problem = RecordValidationError(FEEDBACK_EVENT, empty[0], "must not be empty")
                self.dead_letters.route(message, InvalidRecordError(problem))
                self.dead_letter_count += 1
                continue
            labels.append(
                Label(
                    feedback_id=value["feedback_id"],
                    request_id=value["request_id"],
                    model=value["model_name"],
                    label=value["label"],
                    event_time=value["event_time"],
                )
            )
        return labels

    def close(self) -> None:
        """Leave (nothing to commit)."""
        self.consumer.close()
