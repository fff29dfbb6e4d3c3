"""Broker reachability and idempotent topic creation."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from schemas.exceptions import BrokerUnavailableError, TopicMismatchError
from schemas.kafka_config import admin_config
from schemas.settings import KafkaSettings
from schemas.topics import TopicSpec


@dataclass
class EnsureReport:
    """What :func:`ensure_topics` did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def make_admin(settings: KafkaSettings) -> AdminClient:
    """An ``AdminClient`` built from the shared client configuration."""
    return AdminClient(admin_config(settings))


def wait_for_broker(admin: AdminClient, timeout_s: float = 30.0) -> int:
    """Block until the cluster answers a metadata request; return its broker count.

    :raises BrokerUnavailableError: nothing answered within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            if metadata.brokers:
                return len(metadata.brokers)
        except KafkaException as exc:
            last_error = exc
        time.sleep(0.1)
    raise BrokerUnavailableError(
        f"no Kafka broker answered within {timeout_s:.0f} s (last error: {last_error})"
    )


def ensure_topics(
    admin: AdminClient,
    specs: Iterable[TopicSpec],
    replication_factor: int = 1,
    timeout_s: float = 15.0,
) -> EnsureReport:
    """Create every declared topic that is missing; verify the ones that exist.

    Idempotent: running it twice creates nothing the second time. An existing topic
    whose partition count or cleanup policy differs from its declaration raises
    :class:`TopicMismatchError` naming each difference; nothing is altered.
    """
    specs = list(specs)
    report = EnsureReport()
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, replication_factor, config=s.config())
                for s in missing
            ],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
                report.created.append(name)
            except KafkaException as exc:
                # Another process created it between our listing and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    created = set(report.created)
    to_check = [s for s in specs if s.name not in created]
    report.existing = [s.name for s in to_check]
    _verify(admin, to_check, timeout_s)
    return report


def _verify(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> None:
    if not specs:
        return
    topics = admin.list_topics(timeout=timeout_s).topics
    mismatches: list[str] = []
    for spec in specs:
        actual = len(topics[spec.name].partitions)
        if actual != spec.partitions:
            mismatches.append(f"{spec.name}: {actual} partitions, declared {spec.partitions}")
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    for resource, future in admin.describe_configs(resources).items():
        entries = future.result(timeout=timeout_s)
        policy = entries.get("cleanup.policy")
        spec = next(s for s in specs if s.name == resource.name)
        if policy is not None and policy.value != spec.cleanup_policy:
            mismatches.append(
                f"{spec.name}: cleanup.policy={policy.value}, declared {spec.cleanup_policy}"
            )
    if mismatches:
        raise TopicMismatchError(mismatches)
