"""Topic declarations: one module, consistent, namespaced by prefix."""

from __future__ import annotations

import pytest

from schemas.topics import ALL_TOPICS, MODEL_DEPLOYMENTS, TopicSpec, all_topics


def test_names_are_unique_and_valid_kafka_names() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    for name in names:
        assert set(name) <= allowed, name
        assert len(name) <= 249


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=lambda s: s.name)
def test_each_declaration_is_complete(spec: TopicSpec) -> None:
    assert spec.partitions >= 1
    assert spec.retention_ms == -1 or spec.retention_ms >= 60_000
    assert spec.config()["cleanup.policy"] == spec.cleanup_policy
    assert spec.description and spec.key


def test_rollout_state_topic_is_compacted_and_kept_forever() -> None:
    assert MODEL_DEPLOYMENTS.cleanup_policy == "compact"
    assert MODEL_DEPLOYMENTS.config() == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_prefix_namespaces_every_topic_and_keeps_the_rest() -> None:
    prefixed = all_topics("staging.")
    assert [t.name for t in prefixed] == [f"staging.{t.name}" for t in ALL_TOPICS]
    assert [t.partitions for t in prefixed] == [t.partitions for t in ALL_TOPICS]
    assert all_topics() == ALL_TOPICS
