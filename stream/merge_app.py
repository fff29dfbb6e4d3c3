"""The merge step of partitioned drift processing as a Kafka service (``driftline drift merge``).

It is a :class:`~stream.runtime.loop.ProcessorLoop` on ``drift.partials``: one
:class:`~stream.merge.MergeDomain` per assigned partition, records decoded into
partials and progress reports (:mod:`stream.partials_codec`), DriftScores produced to
``drift.scores``, and offsets committed with a :class:`~stream.merge.MergeCheckpoint`
only after those are acknowledged, so a restart emits no window twice. Records that do
not decode, name a model without a profile, or were counted on another reference go to
the dead-letter topic with the reason; the merge goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from schemas.catalog import DRIFT_PARTIAL, DRIFT_SCORE
from schemas.codec import Codec, make_codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, DRIFT_PARTIALS, DRIFT_SCORES
from stream import drift_metrics as m
from stream.drift_output import DriftOutput
from stream.exceptions import PartialRecordError
from stream.merge import MergeCheckpoint, MergeDomain
from stream.partials import PartitionProgress, WindowPartial
from stream.partials_codec import record_to_partial
from stream.profiles import FileProfileSource, ProfileSource
from stream.runtime.checkpoint import JsonCheckpointStore
from stream.runtime.loop import ProcessorLoop
from stream.settings import DriftMergeSettings, DriftStatsSettings
from stream.stats import DecisionRule

log = logging.getLogger(__name__)


class PartialsMerger:
    """A merge domain per assigned ``drift.partials`` partition (what the loop drives)."""

    def __init__(
        self,
        rule: DecisionRule,
        profiles: ProfileSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rule = rule
        self.profiles = profiles
        self.clock = clock
        self.domains: dict[tuple[str, int], MergeDomain] = {}

    @property
    def partitions(self) -> Mapping[tuple[str, int], object]:
        """The domains, by (topic, partition)."""
        return self.domains

    def assign(self, topic: str, partition: int, checkpoint: Any) -> None:
        """Start (or restart from a :class:`MergeCheckpoint`) a partition's domain."""
        restored = checkpoint if isinstance(checkpoint, MergeCheckpoint) else None
        self.domains[(topic, partition)] = MergeDomain(self.rule, restored)

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a domain (whoever gets the partition replays it) and its gauges (its
        new owner reports them)."""
        self.domains.pop((topic, partition), None)
        for gauge in (m.MERGE_WATERMARK_LAG, m.MERGE_WAITING_PARTITIONS, m.MERGE_PENDING_WINDOWS):
            try:
                gauge.remove(str(partition))
            except KeyError:
                continue

    def checkpoint(self, topic: str, partition: int) -> MergeCheckpoint | None:
        """What to commit for the partition."""
        domain = self.domains.get((topic, partition))
        return None if domain is None else domain.checkpoint()

    def close_ready(self) -> list[DriftOutput]:
        """Merged DriftScores of every domain, and the domains' gauges."""
        out: list[DriftOutput] = []
        now = self.clock()
        for (_, partition), domain in sorted(self.domains.items()):
            out += domain.close_ready()
            label = str(partition)
            mark = domain.merged_watermark()
            if mark is not None:
                m.MERGE_WATERMARK_LAG.labels(label).set(now - mark / 1000.0)
            m.MERGE_WAITING_PARTITIONS.labels(label).set(len(domain.waiting_for()))
            m.MERGE_PENDING_WINDOWS.labels(label).set(len(domain.pending))
        return out


class PartialsIngest:
    """Decode one partition's ``drift.partials`` messages into its merge domain.

    Bad records (undecodable, another record type, unknown model, other reference,
    shapes that do not fit the profile) go to the dead-letter topic with the reason.
    """

    def __init__(
        self,
        merger: PartialsMerger,
        codec: Codec,
        dead_letters: DeadLetterRouter,
        *,
        topic: str,
    ) -> None:
        self.merger = merger
        self.topic = topic
        self.dead_letters = dead_letters
        self.decoder = RecordDecoder(codec, dead_letters, {topic: DRIFT_PARTIAL})

    def __call__(self, partition: int, messages: list[Message]) -> int:
        """Add each message, in order, to the partition's domain; return how many went
        to the dead-letter topic."""
        domain = self.merger.domains.get((self.topic, partition))
        if domain is None:  # revoked while the batch was consumed
            return 0
        dead = 0
        for message in messages:
            offset = message.offset() or 0
            item = self._decode(message)
            if item is None:
                dead += 1
                domain.skip(offset)
                continue
            outcome = domain.add(item, offset)
            if outcome in ("merged", "duplicate", "late"):
                m.MERGE_SHARES.labels(outcome).inc()
        return dead

    def _decode(self, message: Message) -> WindowPartial | PartitionProgress | None:
        """The record as a share or a progress report; None when it went to the
        dead-letter topic (undecodable, or content the merge cannot take)."""
        decoded = self.decoder.decode_one(message)
        if decoded is None:
            return None
        try:
            return record_to_partial(decoded.value, self.merger.profiles)
        except PartialRecordError as exc:
            self.dead_letters.route(message, exc)
            return None


def build_merge_loop(
    kafka: KafkaSettings | None = None,
    settings: DriftMergeSettings | None = None,
    stats: DriftStatsSettings | None = None,
    profiles: ProfileSource | None = None,
) -> ProcessorLoop:
    """A ready merge loop (not yet subscribed) for the configured cluster."""
    kafka = kafka or KafkaSettings()
    settings = settings or DriftMergeSettings()
    stats = stats or DriftStatsSettings()
    prefix = kafka.topic_prefix
    codec = make_codec()
    producer = Producer(producer_config(kafka))
    consumer = Consumer(consumer_config(kafka, settings.group_id))
    merger = PartialsMerger(
        DecisionRule.from_settings(stats), profiles or FileProfileSource(stats.reference_path)
    )
    dead_letters = DeadLetterRouter(
        producer, DEAD_LETTERS.prefixed(prefix).name, group=settings.group_id
    )
    topic = DRIFT_PARTIALS.prefixed(prefix).name
    return ProcessorLoop(
        consumer,
        producer,
        merger,
        codec,
        record_type=DRIFT_SCORE,
        input_topic=topic,
        output_topic=DRIFT_SCORES.prefixed(prefix).name,
        dead_letters=dead_letters,
        group_id=settings.group_id,
        store=None
        if settings.state_dir is None
        else JsonCheckpointStore(settings.state_dir, settings.group_id, MergeCheckpoint.from_json),
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        commit_interval_s=settings.commit_interval_s,
        ingest=PartialsIngest(merger, codec, dead_letters, topic=topic),
        parse_checkpoint=MergeCheckpoint.from_json,
    )
