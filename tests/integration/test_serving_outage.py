"""Serving while the broker is away: requests keep being answered, no event is lost.

The broker here is the test's own embedded broker on a fixed port, so it can be stopped
and started again on the same address. It keeps data in memory only: events it
acknowledged before it stopped are gone with it, so each test first proves those
arrived, and after the restart creates the topics again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftline.ports import free_port
from schemas.admin import ensure_topics, make_admin
from schemas.breast_cancer import load_split
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.state import ServingConfig
from tests.integration.conftest import RestartableBroker
from tests.integration.serving_helpers import events_by_request


def _settings(broker: RestartableBroker) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap, topic_prefix=f"o{uuid.uuid4().hex[:8]}."
    )


def _create_topic(settings: KafkaSettings) -> None:
    ensure_topics(make_admin(settings), [INFERENCE_EVENTS.prefixed(settings.topic_prefix)])


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll a condition; the bound only stops a broken run (the assertion decides)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), f"timed out waiting for {what}"


def test_broker_stopped_under_load_then_restarted_loses_no_event(
    restartable_broker: RestartableBroker, serving_config: Callable[..., ServingConfig]
) -> None:
    settings = _settings(restartable_broker)
    _create_topic(settings)
    row = load_split().x_validation[0].tolist()
    config = serving_config(kafka=settings, buffer_max_events=50, delivery_timeout_s=3.0)
    with TestClient(create_app(config)) as client:
        publisher = client.app.state.serving.publisher  # type: ignore[attr-defined]

        def load(prefix: str, n: int) -> set[str]:
            ids = {f"{prefix}-{i}" for i in range(n)}
            for rid in sorted(ids):
                answer = client.post("/predict", json={"features": row, "request_id": rid})
                assert answer.status_code == 200, answer.text
            return ids

        _wait_for(lambda: publisher.broker_up, "the publisher to reach the broker")
        before = load("before", 100)
        _wait_for(lambda: publisher.stats.published == 100, "100 acknowledgements")
        assert set(events_by_request(settings, before)) >= before  # proven before it is lost

        restartable_broker.stop()
        during = load("during", 300)  # answered while the broker is away
        _wait_for(lambda: not publisher.broker_up, "the publisher to notice the outage")
        assert publisher.stats.spooled > 0  # the memory buffer (50) overflowed to disk

        restartable_broker.start()
        _create_topic(settings)  # the embedded broker forgot everything
        after = load("after", 100)

        events = events_by_request(settings, during | after)
        _wait_for(lambda: publisher.pending() == 0 and not publisher.spool.has_records(),
                  "spool and buffer to drain")  # fmt: skip
        metrics = client.get("/metrics").text
    missing = (during | after) - set(events)
    assert not missing, f"{len(missing)} events never arrived, e.g. {sorted(missing)[:5]}"
    duplicated = {rid for rid in during | after if len(events[rid]) != 1}
    assert not duplicated, f"{len(duplicated)} events arrived more than once"
    assert "serving_app_events_dropped_total" not in metrics or 'reason="spool_full"' not in metrics


def test_spool_full_drops_are_counted_and_logged(
    serving_config: Callable[..., ServingConfig],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no broker, 5 events wait in memory, ~3 fit the spool, the rest are dropped."""
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="x.")
    row = load_split().x_validation[0].tolist()
    config = serving_config(kafka=nowhere, buffer_max_events=5, spool_max_bytes=2_500)
    caplog.set_level(logging.ERROR, logger="serving.publishing.publisher")
    with TestClient(create_app(config)) as client:
        publisher = client.app.state.serving.publisher  # type: ignore[attr-defined]
        for i in range(20):
            answer = client.post("/predict", json={"features": row, "request_id": f"r{i}"})
            assert answer.status_code == 200
        stats = publisher.stats
        text = client.get("/metrics").text
        assert stats.published == 0
        assert stats.spooled + stats.dropped + publisher.queued() == 20
        assert stats.dropped >= 12
        assert f'serving_app_events_dropped_total{{reason="spool_full"}} {stats.dropped}.0' in text
        assert f"serving_app_events_spooled_total {stats.spooled}.0" in text
    assert "dropped 1 events so far (latest: spool_full)" in caplog.text


def test_shutdown_spools_what_is_pending_and_the_next_start_delivers_it(
    restartable_broker: RestartableBroker, serving_config: Callable[..., ServingConfig]
) -> None:
    settings = _settings(restartable_broker)
    restartable_broker.stop()  # serving starts with the broker away
    row = load_split().x_validation[0].tolist()
    ids = {f"s-{i}" for i in range(40)}
    with TestClient(create_app(serving_config(kafka=settings, shutdown_flush_s=1.0))) as client:
        for rid in sorted(ids):
            assert client.post("/predict", json={"features": row, "request_id": rid}).is_success
        publisher = client.app.state.serving.publisher  # type: ignore[attr-defined]
    assert publisher.spool.has_records()  # shutdown put the 40 pending events on disk

    restartable_broker.start()
    _create_topic(settings)
    with TestClient(create_app(serving_config(kafka=settings))) as client:  # same data dir
        events = events_by_request(settings, ids)
    assert {rid: len(evs) for rid, evs in events.items() if rid in ids} == dict.fromkeys(ids, 1)
