"""Post alerts to Alertmanager from a background thread, with backoff, losing nothing.

The processing loop only calls :meth:`AlertmanagerSender.submit`, which never blocks on
the network: it records the alert's newest state under its fingerprint and wakes the
sender thread. The thread posts everything pending in one ``POST /api/v2/alerts``; on
failure (Alertmanager down, 5xx, timeout) it keeps it all and retries after an
exponential backoff with jitter, so an outage slows nothing and a recovery delivers the
newest state of every alert.

Bounded memory, and why no firing alert is lost:

- pending alerts are coalesced by fingerprint (a resolve replaces the firing it ends),
  so the queue holds at most one entry per alert identity;
- every firing alert is also kept in ``active`` and posted again every
  ``resend_interval_s``, outside the bounded queue (Alertmanager expects re-sends;
  each carries ``endsAt`` = now + ``firing_ttl_s``, so alerts of a dead evaluator
  resolve themselves);
- past ``max_pending`` identities the oldest pending entry is dropped and counted
  (``driftline_alerting_notifications_dropped_total``): a dropped firing alert comes
  back at the next re-send, a dropped resolve becomes Alertmanager's own timeout
  resolution ``firing_ttl_s`` later.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from schemas.redaction import redact_url
from stream.alerting import metrics as m
from stream.alerting.alerts import Notice

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass
class Backoff:
    """Exponential backoff with full jitter: ``uniform(d(1-jitter), d)``, d doubling to max."""

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.5
    failures: int = 0

    def next_delay(self) -> float:
        """Delay before the next attempt after one more failure."""
        delay: float = min(self.max_s, self.initial_s * 2.0**self.failures)
        self.failures += 1
        return delay * (1 - self.jitter * random.random())  # noqa: S311 (not crypto)

    def reset(self) -> None:
        self.failures = 0


class AlertmanagerSender:
    """Deliver :class:`Notice` states to one Alertmanager, in the background.

    :param url: Alertmanager base URL (``http://127.0.0.1:9093``).
    :param client: the HTTP client (tests pass one with a mock transport).
    :param resend_interval_s: how often firing alerts are posted again.
    :param firing_ttl_s: ``endsAt`` of a firing alert is this far after each send;
        default four re-send intervals, as Prometheus does.
    :param max_pending: most alert identities waiting for delivery.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 5.0,
        resend_interval_s: float = 60.0,
        firing_ttl_s: float | None = None,
        max_pending: int = 10_000,
        backoff: Backoff | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.shown = redact_url(self.endpoint)
        self.client = client or httpx.Client(timeout=timeout_s)
        self.resend_interval_s = resend_interval_s
        self.firing_ttl_s = firing_ttl_s if firing_ttl_s is not None else 4 * resend_interval_s
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.active: dict[str, Notice] = {}
        self.pending: OrderedDict[str, tuple[int, Notice]] = OrderedDict()
        self.sent = 0
        self.dropped = 0
        self._seq = 0
        self._next_attempt = 0.0
        self._next_resend = clock() + resend_interval_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the processing side ----------------------------------------------------------

    def submit(self, notice: Notice) -> None:
        """Queue ``notice`` for delivery; returns at once, whatever Alertmanager's state."""
        with self._wake:
            if notice.state == "firing":
                self.active[notice.fingerprint] = notice
            else:
                self.active.pop(notice.fingerprint, None)
            self._enqueue(notice)
            self._wake.notify()

    def _enqueue(self, notice: Notice) -> None:
        self._seq += 1
        self.pending[notice.fingerprint] = (self._seq, notice)
        self.pending.move_to_end(notice.fingerprint)
        while len(self.pending) > self.max_pending:
            fp, (_, old) = self.pending.popitem(last=False)
            self.dropped += 1
            m.NOTIFICATIONS_DROPPED.inc()
            log.warning(
                "alert queue full (%d): dropped the %s state of %s (%s)%s", self.max_pending,
                old.state, old.labels.get("alertname"), fp,
                "; it is re-sent while firing" if fp in self.active else "",
            )  # fmt: skip
        m.NOTIFICATIONS_PENDING.set(len(self.pending))

    # -- the sending side -------------------------------------------------------------

    def attempt(self) -> bool:
        """Post everything pending once (the thread's unit of work); True on success.

        Alerts submitted while the request is in flight stay pending for the next
        attempt; on failure nothing is removed.
        """
        with self._lock:
            now = self.clock()
            self._forget_ended(round(now * 1000))
            resend = now >= self._next_resend
            batch = list(self.pending.items())
            again = [n for fp, n in self.active.items() if resend and fp not in self.pending]
        if not batch and not again:
            if resend:
                self._next_resend = now + self.resend_interval_s
            return True
        now_ms = round(now * 1000)
        ttl_ms = round(self.firing_ttl_s * 1000)
        notices = [notice for _, (_, notice) in batch] + again
        body = [notice.to_alertmanager(now_ms, ttl_ms) for notice in notices]
        try:
            response = self.client.post(self.endpoint, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            delay = self.backoff.next_delay()
            with self._lock:
                self._next_attempt = self.clock() + delay
            m.SEND_FAILURES.inc()
            log.warning(
                "Alertmanager %s refused %d alerts (%s); retrying in %.1f s",
                self.shown, len(body), _reason(exc), delay,
            )  # fmt: skip
            return False
        with self._lock:
            for fp, (seq, _) in batch:
                current = self.pending.get(fp)
                if current is not None and current[0] == seq:
                    del self.pending[fp]
            m.NOTIFICATIONS_PENDING.set(len(self.pending))
            self._next_attempt = 0.0
            if resend:
                self._next_resend = now + self.resend_interval_s
        self.backoff.reset()
        self.sent += len(body)
        m.NOTIFICATIONS_SENT.inc(len(body))
        return True

    def _forget_ended(self, now_ms: int) -> None:
        """Stop re-sending firing alerts whose own ``endsAt`` has passed (an event's alert,
        e.g. RetrainCandidateRejected): Alertmanager resolved them at that time."""
        ended = [
            fp for fp, n in self.active.items() if n.ends_at is not None and n.ends_at <= now_ms
        ]
        for fp in ended:
            del self.active[fp]

    def start(self) -> AlertmanagerSender:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="alertmanager-sender", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._due():
                    self._wake.wait(timeout=self._sleep_s())
                if self._stopping:
                    return
            self.attempt()

    def _due(self) -> bool:
        now = self.clock()
        if now < self._next_attempt:
            return False
        return bool(self.pending) or now >= self._next_resend

    def _sleep_s(self) -> float:
        """Until the next re-send or retry is due, at most 1 s (a submit wakes us anyway)."""
        targets = [self._next_resend]
        if self.pending:
            targets.append(self._next_attempt)
        return min(1.0, max(0.01, min(targets) - self.clock()))

    def flush(self, timeout_s: float) -> bool:
        """Wait until nothing is pending (or ``timeout_s``); True when all was delivered."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self.pending:
                    return True
            if self._thread is None:
                self.attempt()
            time.sleep(0.05)
        with self._lock:
            return not self.pending

    def close(self, timeout_s: float = 5.0) -> None:
        """Try to deliver what is pending for ``timeout_s``, then stop the thread."""
        if self._thread is not None:
            self.flush(timeout_s)
            with self._wake:
                self._stopping = True
                self._wake.notify()
            self._thread.join(timeout=timeout_s + 1)
            self._thread = None
        if self.pending:
            log.warning("stopping with %d alerts undelivered to Alertmanager", len(self.pending))
        self.client.close()


def _reason(exc: httpx.HTTPError) -> str:
    """Why a post failed, without the request body (annotations may quote data)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
