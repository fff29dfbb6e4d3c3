"""Live rollout state (canary version and share) in Redis, and sticky variant routing.

The state of model ``M`` is the Redis hash ``driftline:rollout:M`` with fields
``canary_version`` (a registry version; absent = no canary), ``canary_share`` (0..1),
``shadow_version`` (a version that gets a copy of the traffic, off the request path;
absent = no shadow) and ``champion_version`` (written by promote, so every replica
reloads the champion alias when it changes). The admin API writes it
(``POST /admin/canary``, ``/admin/shadow``, ``/admin/promote``); the retrain controller
will write the same hash. Each writer changes only its own fields. Every serving
replica re-reads it every ``poll_s`` (0.5 s), so all replicas agree within a second,
without a restart.

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
from dataclasses import dataclass

import redis

from schemas.events import Variant

log = logging.getLogger(__name__)

KEY_PREFIX = "driftline:rollout:"
_SCALE = float(2**64)


def rollout_key(model_name: str) -> str:
    """The Redis hash holding ``model_name``'s rollout state."""
    return f"{KEY_PREFIX}{model_name}"


def route_point(key: str) -> float:
    """Where ``key`` falls in [0, 1): the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose_variant(key: str, canary_share: float) -> Variant:
    """``canary`` for keys whose point is below the share, else ``baseline``."""
    return "canary" if canary_share > 0 and route_point(key) < canary_share else "baseline"


@dataclass(frozen=True)
class RolloutState:
    """One model's rollout: which version is the canary and what share it gets."""

    canary_version: str | None = None
    canary_share: float = 0.0
    shadow_version: str | None = None
    #: Set by promote: the champion every replica should serve (None: whatever the alias says).
    champion_version: str | None = None

    @property
    def active(self) -> bool:
        return self.canary_version is not None and self.canary_share > 0


class RolloutStore:
    """Read and write rollout state in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def read(self, model_name: str) -> RolloutState | None:
        """The stored state, or None when nothing was ever written for the model."""
        raw = self.client.hgetall(rollout_key(model_name))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        version = fields.get("canary_version") or None
        try:
            share = min(1.0, max(0.0, float(fields.get("canary_share", "0"))))
        except ValueError:
            log.error("rollout state of %s has a bad canary_share; using 0", model_name)
            share = 0.0
        return RolloutState(
            version,
            share,
            fields.get("shadow_version") or None,
            fields.get("champion_version") or None,
        )

    def write(self, model_name: str, state: RolloutState) -> None:
        """Replace the stored state (one atomic HSET/HDEL transaction)."""
        self._write(model_name, {
            "canary_version": state.canary_version,
            "canary_share": repr(state.canary_share),
            "shadow_version": state.shadow_version,
            "champion_version": state.champion_version,
        })  # fmt: skip

    def write_canary(self, model_name: str, version: str | None, share: float) -> None:
        """Change only the canary fields (a shadow or champion set by others stays)."""
        self._write(model_name, {"canary_version": version, "canary_share": repr(share)})

    def write_shadow(self, model_name: str, version: str | None) -> None:
        """Change only the shadow version (None clears it)."""
        self._write(model_name, {"shadow_version": version})

    def write_promotion(self, model_name: str, champion_version: str) -> None:
        """Record a promotion: the new champion, and no canary any more."""
        self._write(model_name, {
            "canary_version": None,
            "canary_share": repr(0.0),
            "champion_version": champion_version,
        })  # fmt: skip

    def _write(self, model_name: str, fields: dict[str, str | None]) -> None:
        """HSET the given fields, HDEL those given as None, in one transaction."""
        key = rollout_key(model_name)
        pipe = self.client.pipeline(transaction=True)
        for name, value in fields.items():
            if value is None:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, value)
        pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
