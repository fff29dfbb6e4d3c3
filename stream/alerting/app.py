"""Assemble the alert evaluator from settings: what ``driftline alerts run`` starts."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from schemas.catalog import DEPLOYMENT_EVENT, DRIFT_SCORE, SLO_WINDOW
from schemas.codec import make_codec
from schemas.consumer import RecordDecoder
from schemas.dead_letters import DeadLetterRouter
from schemas.kafka_config import consumer_config, producer_config
from schemas.settings import KafkaSettings
from schemas.topics import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_SCORES,
    MODEL_DEPLOYMENTS,
    RETRAIN_REQUESTS,
    SLO_WINDOWS,
)
from stream.alerting.evaluator import Evaluator
from stream.alerting.loop import AlertLoop
from stream.alerting.rules import load_rules
from stream.alerting.sender import AlertmanagerSender, Backoff
from stream.alerting.settings import AlertingSettings, AlertmanagerSettings


def build_sender(settings: AlertmanagerSettings) -> AlertmanagerSender | None:
    """The background Alertmanager sender, or None when no URL is configured."""
    if settings.url is None:
        return None
    return AlertmanagerSender(
        settings.url,
        timeout_s=settings.timeout_s,
        resend_interval_s=settings.resend_interval_s,
        max_pending=settings.max_pending,
        backoff=Backoff(max_s=settings.backoff_max_s),
    )


def build_alert_loop(
    kafka: KafkaSettings | None = None,
    settings: AlertingSettings | None = None,
    alertmanager: AlertmanagerSettings | None = None,
) -> AlertLoop:
    """A ready :class:`AlertLoop` (not yet subscribed) for the configured cluster.

    :raises AlertRulesError: the rules file is unreadable or invalid.
    """
    kafka = kafka or KafkaSettings()
    settings = settings or AlertingSettings()
    alertmanager = alertmanager or AlertmanagerSettings()
    prefix = kafka.topic_prefix
    config = load_rules(settings.rules_path)
    codec = make_codec()
    producer = Producer(producer_config(kafka))
    drift_topic = DRIFT_SCORES.prefixed(prefix).name
    slo_topic = SLO_WINDOWS.prefixed(prefix).name
    deployments_topic = MODEL_DEPLOYMENTS.prefixed(prefix).name
    dead_letters = DeadLetterRouter(producer, DEAD_LETTERS.prefixed(prefix).name)
    expected = {
        drift_topic: DRIFT_SCORE,
        slo_topic: SLO_WINDOW,
        deployments_topic: DEPLOYMENT_EVENT,
    }
    decoder = RecordDecoder(codec, dead_letters, expected=expected)
    return AlertLoop(
        Consumer(consumer_config(kafka, settings.group_id)),
        producer,
        Evaluator(config),
        codec,
        decoder,
        drift_topic=drift_topic,
        slo_topic=slo_topic,
        alerts_topic=ALERTS.prefixed(prefix).name,
        retrain_topic=RETRAIN_REQUESTS.prefixed(prefix).name,
        dead_letters=dead_letters,
        sender=build_sender(alertmanager),
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        replay_s=settings.replay_s,
        deployments_topic=deployments_topic,
        rejection_ttl_s=settings.rejection_alert_ttl_s,
    )
