"""Client configuration is built in one place, with the broker workarounds applied."""

from __future__ import annotations

from pydantic import SecretStr

from schemas.kafka_config import admin_config, consumer_config, once_assigned, producer_config
from schemas.settings import KafkaSettings


def test_consumer_commits_manually_and_joins_groups_fast() -> None:
    conf = consumer_config(KafkaSettings(bootstrap_servers="k:9092"), "drift")
    assert conf["bootstrap.servers"] == "k:9092"
    assert conf["group.id"] == "drift"
    # Offsets are committed only after outputs are produced.
    assert conf["enable.auto.commit"] is False
    # librdkafka's 45 s default session timeout makes a group join take ~20 s on the
    # embedded broker (measured); 6 s takes ~3 s.
    assert conf["session.timeout.ms"] == 6000
    assert conf["heartbeat.interval.ms"] == 500


def test_consumer_resumes_fetching_soon_after_its_queue_was_full() -> None:
    conf = consumer_config(KafkaSettings(bootstrap_servers="k:9092"), "drift")
    # librdkafka's 1000 ms default left a catching-up consumer idle for most of each
    # second once it had drained its full prefetch queue (measured: ~150,000 vs
    # ~500,000 messages/s from the embedded broker).
    assert conf["fetch.queue.backoff.ms"] == 20


def test_producer_is_idempotent_with_full_acks() -> None:
    conf = producer_config(KafkaSettings())
    assert conf["enable.idempotence"] is True
    assert conf["acks"] == "all"


def test_overrides_apply_in_order_general_then_role_then_call() -> None:
    settings = KafkaSettings(
        client_overrides={"client.id": "general", "linger.ms": 1},
        producer_overrides={"linger.ms": 20},
        consumer_overrides={"session.timeout.ms": 10000},
    )
    producer = producer_config(settings, **{"client.id": "per-call"})
    assert producer["linger.ms"] == 20
    assert producer["client.id"] == "per-call"
    consumer = consumer_config(settings, "g")
    assert consumer["session.timeout.ms"] == 10000
    assert consumer["client.id"] == "general"
    assert "session.timeout.ms" not in producer


def test_sasl_credentials_reach_the_client_only() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="driftline",
        sasl_password=SecretStr("s3cret-value"),
    )
    conf = admin_config(settings)
    assert conf["sasl.password"] == "s3cret-value"
    assert conf["security.protocol"] == "SASL_SSL"
    assert "s3cret-value" not in str(settings.masked())


def test_once_assigned_calls_back_at_the_first_assignment_only() -> None:
    """A consumer's ready line is printed once, not again at every rebalance."""
    calls: list[int] = []
    hook = once_assigned(lambda: calls.append(1))
    assert calls == []
    hook(None, [])  # type: ignore[arg-type]  # the consumer is not used
    hook(None, [])  # type: ignore[arg-type]
    assert calls == [1]
    once_assigned(None)(None, [])  # type: ignore[arg-type]  # no callback: nothing to do
