"""The Alertmanager sender: coalescing, bounded queue, backoff, re-sends (mock transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from stream.alerting.alerts import Notice
from stream.alerting.sender import AlertmanagerSender, Backoff


class FakeAlertmanager:
    """Records posted batches; answers ``status`` (503 while "down")."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.up = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/alerts"
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        self.batches.append(json.loads(request.content))
        return httpx.Response(200)


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_000_100.0  # after the alerts below resolve

    def __call__(self) -> float:
        return self.now


def make(am: FakeAlertmanager, clock: Clock, **kwargs: Any) -> AlertmanagerSender:
    client = httpx.Client(transport=httpx.MockTransport(am.handle))
    return AlertmanagerSender(
        "http://am.test", client=client, clock=clock, backoff=Backoff(jitter=0.0), **kwargs
    )


def alert(name: str, state: str = "firing") -> Notice:
    labels = {"alertname": name, "severity": "high", "model": "m", "variant": "baseline"}
    return Notice(
        f"fp-{name}",
        labels,
        {"summary": name},
        state,  # type: ignore[arg-type]
        1_764_000_000_000,
        None if state == "firing" else 1_764_000_060_000,
    )


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    jittered = Backoff(initial_s=1.0, jitter=0.5)
    assert all(0.5 <= jittered.next_delay() / 2**i <= 1.0 for i in range(4))


def test_outage_keeps_alerts_and_delivers_the_newest_state_on_recovery() -> None:
    am, clock = FakeAlertmanager(), Clock()
    sender = make(am, clock)
    am.up = False
    sender.submit(alert("A"))
    sender.submit(alert("B"))
    assert sender.attempt() is False and sender.attempt() is False
    assert len(sender.pending) == 2 and sender.backoff.failures == 2
    sender.submit(alert("A", "resolved"))  # coalesced: A's resolve replaces its firing
    am.up = True
    assert sender.attempt() is True
    [batch] = am.batches
    states = {a["labels"]["alertname"]: a["endsAt"] for a in batch}
    assert set(states) == {"A", "B"}
    assert states["A"].startswith("2025-11-24T16:01:00")  # the resolve's endsAt
    assert not sender.pending and sender.backoff.failures == 0
    assert list(sender.active) == ["fp-B"]


def test_firing_alerts_are_re_sent_with_a_fresh_ends_at() -> None:
    am, clock = FakeAlertmanager(), Clock()
    sender = make(am, clock, resend_interval_s=60.0)
    sender.submit(alert("A"))
    sender.attempt()
    clock.now += 30
    sender.attempt()
    assert len(am.batches) == 1  # nothing due
    clock.now += 31
    sender.attempt()
    assert len(am.batches) == 2
    ends = [httpx_time(b[0]["endsAt"]) for b in am.batches]
    assert ends[1] - ends[0] == pytest.approx(61.0)  # now + 4 x 60 s at each send
    sender.submit(alert("A", "resolved"))
    sender.attempt()
    clock.now += 120
    sender.attempt()
    assert len(am.batches) == 3  # resolved: sent once, never re-sent


def test_full_queue_drops_the_oldest_and_firing_ones_come_back() -> None:
    am, clock = FakeAlertmanager(), Clock()
    sender = make(am, clock, max_pending=2, resend_interval_s=60.0)
    am.up = False
    for name in ("A", "B", "C"):
        sender.submit(alert(name))
    assert list(sender.pending) == ["fp-B", "fp-C"] and sender.dropped == 1
    am.up = True
    clock.now += 61  # the re-send puts A back
    sender.attempt()
    assert sorted(a["labels"]["alertname"] for a in am.batches[-1]) == ["A", "B", "C"]


def test_alert_submitted_during_a_post_is_not_lost() -> None:
    am, clock = FakeAlertmanager(), Clock()
    sender = make(am, clock)
    original = am.handle

    def handle_and_update(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if len(am.batches) == 1:
            sender.pending["fp-A"] = (99, alert("A", "resolved"))  # a newer state arrives
        return response

    sender.client = httpx.Client(transport=httpx.MockTransport(handle_and_update))
    sender.submit(alert("A"))
    sender.attempt()
    assert "fp-A" in sender.pending  # the newer state stays for the next attempt


def test_background_thread_delivers_and_close_flushes() -> None:
    am = FakeAlertmanager()
    client = httpx.Client(transport=httpx.MockTransport(am.handle))
    sender = AlertmanagerSender("http://am.test", client=client).start()
    sender.submit(alert("A"))
    assert sender.flush(10.0)
    sender.close()
    assert [a["labels"]["alertname"] for b in am.batches for a in b] == ["A"]


def httpx_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
