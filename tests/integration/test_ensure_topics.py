"""ensure_topics creates what is declared, is idempotent, and reports mismatches."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic

from schemas.admin import ensure_topics, make_admin
from schemas.exceptions import TopicMismatchError
from schemas.settings import KafkaSettings
from schemas.topics import all_topics


def test_creates_every_declared_topic_once(kafka_settings: KafkaSettings) -> None:
    admin = make_admin(kafka_settings)
    specs = all_topics(kafka_settings.topic_prefix)

    first = ensure_topics(admin, specs)
    assert sorted(first.created) == sorted(s.name for s in specs)

    second = ensure_topics(admin, specs)
    assert second.created == []
    assert sorted(second.existing) == sorted(s.name for s in specs)

    metadata = admin.list_topics(timeout=10).topics
    for spec in specs:
        assert len(metadata[spec.name].partitions) == spec.partitions, spec.name


def test_compacted_topic_is_created_compacted(kafka_settings: KafkaSettings) -> None:
    admin = make_admin(kafka_settings)
    spec = next(s for s in all_topics(kafka_settings.topic_prefix) if s.cleanup_policy == "compact")
    ensure_topics(admin, [spec])
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    assert entries["cleanup.policy"].value == "compact"


def test_wrong_partition_count_is_reported_not_altered(kafka_settings: KafkaSettings) -> None:
    admin = make_admin(kafka_settings)
    spec = all_topics(kafka_settings.topic_prefix)[0]
    wrong = spec.partitions + 1
    for future in admin.create_topics([NewTopic(spec.name, wrong, 1)]).values():
        future.result()

    with pytest.raises(TopicMismatchError) as info:
        ensure_topics(admin, [spec])
    assert f"{spec.name}: {wrong} partitions, declared {spec.partitions}" in str(info.value)
    assert len(admin.list_topics(timeout=10).topics[spec.name].partitions) == wrong
