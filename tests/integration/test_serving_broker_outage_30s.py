"""Serving under steady load while the broker is stopped for 30 s: no failure, no loss.

A real HTTP server (uvicorn, serving's own app, publishing on) takes an open-loop
schedule of ``RATE`` one-row ``/predict`` requests per second from an async httpx
client for ``LOAD_S`` seconds. ``STOP_AT`` seconds in, the test's embedded broker is
stopped; ``OUTAGE_S`` later it is started again on the same port (its topic created
again: it keeps data in memory only). What must hold: every request is answered 200,
and every request's InferenceEvent is on the topic afterwards, matched by request id.

The embedded broker forgets what it acknowledged when it stops, so a reader follows
the topic until the stop. An event the broker acknowledged but the reader had not yet
fetched is lost with the broker, not by serving; the test counts those exactly (the
publisher's acknowledged count minus what the reader saw) and allows only that many
missing ids, all from before the stop. Every event of a request sent after the stop
must arrive exactly once. Marked ``reliability``: it runs ~50 s (``make test-reliability``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from confluent_kafka import TopicPartition

from schemas.admin import ensure_topics, make_admin
from schemas.breast_cancer import load_split
from schemas.codec import SingleObjectCodec
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS
from serving.app import create_app
from serving.state import ServingConfig
from tests.integration.conftest import RestartableBroker, assigned_consumer
from tests.integration.http_serving import http_server

pytestmark = pytest.mark.reliability

RATE = 20  # requests per second, open loop
STOP_AT = 5.0  # seconds into the load
OUTAGE_S = 30.0
LOAD_S = STOP_AT + OUTAGE_S + 5.0
#: Only stops a broken run; assertions decide.
BOUND_S = 60.0
CODEC = SingleObjectCodec()


class TopicReader:
    """Every request id on the inference topic, read in a thread until stopped."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix).name
        self.consumer = assigned_consumer(
            settings, self.topic, INFERENCE_EVENTS.partitions, f"outage-{uuid.uuid4().hex[:8]}"
        )
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(num_messages=500, timeout=0.05):
                if msg.error() is None:
                    self.ids.append(CODEC.decode(msg.value() or b"").value["request_id"])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()
        return self.ids


def _read_to_end(settings: KafkaSettings) -> list[str]:
    """Every request id on the topic, up to the high watermark of each partition."""
    topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix).name
    consumer = assigned_consumer(
        settings, topic, INFERENCE_EVENTS.partitions, f"outage-{uuid.uuid4().hex[:8]}"
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(INFERENCE_EVENTS.partitions)
        }
        positions = dict.fromkeys(ends, 0)
        ids: list[str] = []
        deadline = time.monotonic() + BOUND_S
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                partition, offset = msg.partition(), msg.offset()
                if msg.error() is None and partition is not None and offset is not None:
                    ids.append(CODEC.decode(msg.value() or b"").value["request_id"])
                    positions[partition] = offset + 1
        assert all(positions[p] >= ends[p] for p in ends), (positions, ends)
        return ids
    finally:
        consumer.close()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), f"timed out waiting for {what}"


def test_broker_stopped_30s_under_steady_load_no_request_fails_no_event_is_lost(
    restartable_broker: RestartableBroker, serving_config: Callable[..., ServingConfig]
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=restartable_broker.bootstrap, topic_prefix=f"o{uuid.uuid4().hex[:8]}."
    )
    topic = INFERENCE_EVENTS.prefixed(settings.topic_prefix)
    ensure_topics(make_admin(settings), [topic])
    row = load_split().x_validation[0].tolist()
    # a small memory buffer: most of the outage's events go through the disk spool
    app = create_app(serving_config(kafka=settings, buffer_max_events=100, delivery_timeout_s=3.0))
    answers: dict[str, int | str] = {}
    sent_at: dict[str, float] = {}
    marks: dict[str, float] = {}
    acknowledged_before_stop = 0
    reader = TopicReader(settings)

    async def request(client: httpx.AsyncClient, rid: str) -> None:
        sent_at[rid] = time.monotonic()
        try:
            answer = await client.post("/predict", json={"features": row, "request_id": rid})
            answers[rid] = answer.status_code
        except httpx.HTTPError as exc:
            answers[rid] = repr(exc)

    async def outage(t0: float) -> None:
        nonlocal acknowledged_before_stop
        await asyncio.sleep(t0 + STOP_AT - time.monotonic())
        await asyncio.to_thread(restartable_broker.stop)
        marks["stopped"] = time.monotonic()
        await asyncio.sleep(marks["stopped"] + OUTAGE_S - time.monotonic())
        # read now: an acknowledgement received before the stop is counted by now
        acknowledged_before_stop = publisher.stats.published
        await asyncio.to_thread(restartable_broker.start)
        await asyncio.to_thread(ensure_topics, make_admin(settings), [topic])
        marks["restarted"] = time.monotonic()

    async def load(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
            t0 = time.monotonic()
            stopping = asyncio.create_task(outage(t0))
            tasks = []
            for i in range(int(LOAD_S * RATE)):
                await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
                tasks.append(asyncio.create_task(request(client, f"r{i:05d}")))
            await asyncio.gather(*tasks, stopping)

    with http_server(app) as base:
        publisher = app.state.serving.publisher
        _wait_for(lambda: publisher.broker_up, "the publisher to reach the broker")
        reader.start()
        try:
            asyncio.run(load(base))
        finally:
            seen_before_stop = set(reader.stop())
        _wait_for(lambda: publisher.pending() == 0 and not publisher.spool.has_records(),
                  "buffer and spool to drain")  # fmt: skip
        spooled = publisher.stats.spooled
    after = _read_to_end(settings)

    failed = {rid: a for rid, a in answers.items() if a != 200}
    assert len(answers) == int(LOAD_S * RATE) and not failed, f"{len(failed)} failed: {failed}"
    assert marks["restarted"] - marks["stopped"] >= OUTAGE_S
    assert spooled > 0  # the outage outgrew the memory buffer (100) and went to disk
    every = set(answers)
    after_stop = {rid for rid in every if sent_at[rid] >= marks["stopped"]}
    missing = every - seen_before_stop - set(after)
    # only events the broker acknowledged and took with it may be missing, and no more
    lost_with_broker = acknowledged_before_stop - len(seen_before_stop)
    assert not missing & after_stop, f"sent after the stop, never arrived: {sorted(missing)[:5]}"
    assert len(missing) <= lost_with_broker, (
        f"{len(missing)} events never arrived, only {lost_with_broker} went with the broker: "
        f"{sorted(missing)[:5]}"
    )
    twice = [rid for rid in after_stop if after.count(rid) != 1]
    assert not twice, f"{len(twice)} events sent after the stop arrived more than once"
