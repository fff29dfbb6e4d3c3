"""Following live rollout state (:mod:`schemas.rollout_state`), and sticky variant routing.

Every serving replica re-reads the state every ``poll_s`` (0.5 s), so all replicas agree
within a second, without a restart.

Routing is sticky and monotone: a request's key (``entity_id``, else ``request_id``) is
hashed to a point in [0, 1); it goes to the canary when the point is below the share.
The same key always lands on the same variant while the share is unchanged, and raising
the share only moves keys from baseline to canary, never back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

import redis

from schemas.events import Variant
from schemas.rollout_state import RolloutState, RolloutStore

log = logging.getLogger(__name__)

_SCALE = float(2**64)


def route_point(key: str) -> float:
    """Where ``key`` falls in [0, 1): the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose_variant(key: str, canary_share: float) -> Variant:
    """``canary`` for keys whose point is below the share, else ``baseline``."""
    return "canary" if canary_share > 0 and route_point(key) < canary_share else "baseline"


class RolloutWatcher:
    """Polls Redis and hands every changed state to ``on_change`` (in its own thread).

    Redis being away is logged (once per outage) and the last known state stays.
    """

    def __init__(
        self,
        store: RolloutStore,
        model_name: str,
        on_change: Callable[[RolloutState], None],
        poll_s: float = 0.5,
    ) -> None:
        self.store = store
        self.model_name = model_name
        self.on_change = on_change
        self.poll_s = poll_s
        self._last: RolloutState | None = None
        self._stop = threading.Event()
        self._redis_down = False
        self._thread = threading.Thread(target=self._run, name="serving-rollout", daemon=True)

    def start(self) -> None:
        self.poll_once()
        self._thread.start()

    def poll_once(self) -> None:
        """Read the state once; call ``on_change`` if it differs from the last one."""
        try:
            state = self.store.read(self.model_name)
        except redis.RedisError as exc:
            if not self._redis_down:
                log.warning("Redis unreachable (%s); keeping the last rollout state", exc)
            self._redis_down = True
            return
        self._redis_down = False
        state = state or RolloutState()  # every field deleted: no canary, no shadow
        if state == self._last:
            return
        try:
            self.on_change(state)
            self._last = state
        except Exception:  # e.g. the canary version cannot be loaded: retry next poll
            log.exception("could not apply rollout state %s", state)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
