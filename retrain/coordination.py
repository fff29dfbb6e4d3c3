"""Who may train which model when: de-duplication, cooldown and a lock, all in Redis.

Per request, inside the model's lock (so two workers never decide at once):

1. **De-dup**: ``driftline:retrain:done:<idempotency key>`` holds the recorded outcome
   (``SET NX EX dedup_ttl``); a request whose key is there is a no-op.
2. **Cooldown**: ``driftline:retrain:cooldown:<model>`` is set ``NX EX cooldown`` by the
   request that starts a retrain, with its idempotency key as value. While it exists,
   other non-urgent requests for the model are *suppressed* (recorded, not trained); the
   request that set it passes (that is its own retry after a crash). An ``urgent``
   request bypasses the cooldown (and starts a new one) but never the lock.
3. **Lock**: ``driftline:retrain:lock:<model>`` is ``SET NX PX ttl`` with a random token,
   renewed every third of the ttl while training (compare-and-``PEXPIRE``), released by
   compare-and-delete; a worker that dies stops renewing, so the lock expires.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from types import TracebackType
from typing import Final

import redis

from retrain.exceptions import LockBusyError, LockLostError

log = logging.getLogger(__name__)

KEY_PREFIX: Final = "driftline:retrain:"

# Only the holder (same token) may extend or delete the lock: one atomic script each.
_RENEW: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


def lock_key(model_name: str) -> str:
    return f"{KEY_PREFIX}lock:{model_name}"


def cooldown_key(model_name: str) -> str:
    return f"{KEY_PREFIX}cooldown:{model_name}"


def done_key(idempotency_key: str) -> str:
    return f"{KEY_PREFIX}done:{idempotency_key}"


def run_key(idempotency_key: str) -> str:
    return f"{KEY_PREFIX}run:{idempotency_key}"


class ModelLock:
    """The training lock of one model; a context manager that renews it in a thread.

    :param ttl_s: lock lifetime; renewed every ``ttl_s / 3`` while held.
    """

    def __init__(self, client: redis.Redis, model_name: str, ttl_s: float) -> None:
        self.client = client
        self.key = lock_key(model_name)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._renewer: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """``SET key token NX PX ttl``: True when this holder got it."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def acquire(self, wait_s: float, poll_s: float = 0.1) -> None:
        """Take the lock, waiting up to ``wait_s`` for another holder to finish.

        :raises LockBusyError: still held by another worker after ``wait_s``.
        """
        deadline = time.monotonic() + wait_s
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise LockBusyError(f"{self.key} is held by another worker (waited {wait_s:g} s)")
            time.sleep(poll_s)

    def renew(self) -> bool:
        """Extend the lock if this holder still has it (compare-and-PEXPIRE)."""
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, str(self.ttl_ms)))

    def release(self) -> bool:
        """Delete the lock if this holder still has it (compare-and-delete)."""
        return bool(self.client.eval(_RELEASE, 1, self.key, self.token))

    @property
    def lost(self) -> bool:
        """True once a renewal found the lock gone or someone else's."""
        return self._lost.is_set()

    def check(self) -> None:
        """:raises LockLostError: the lock was lost while held."""
        if self.lost:
            raise LockLostError(f"{self.key} expired or was taken while training")

    def _renew_loop(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    log.error("lost %s while training", self.key)
                    self._lost.set()
                    return
            except redis.RedisError as exc:  # keep trying until the ttl runs out
                log.warning("could not renew %s: %s", self.key, exc)

    def start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew_loop, name="retrain-lock", daemon=True)
        self._renewer.start()

    def stop_renewing(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()

    def __enter__(self) -> ModelLock:
        self.start_renewing()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_renewing()
        try:
            self.release()
        except redis.RedisError as err:  # it expires on its own
            log.warning("could not release %s: %s", self.key, err)


class Admission:
    """De-dup and cooldown decisions (call them while holding the model's lock)."""

    def __init__(self, client: redis.Redis, cooldown_s: float, dedup_ttl_s: float) -> None:
        self.client = client
        self.cooldown_ms = int(cooldown_s * 1000)
        self.dedup_ttl_ms = max(1, int(dedup_ttl_s * 1000))

    def outcome_of(self, idempotency_key: str) -> str | None:
        """The outcome recorded for this key, or None when it was never handled."""
        value = self.client.get(done_key(idempotency_key))
        return None if value is None else _text(value)

    def record(self, idempotency_key: str, outcome: str) -> bool:
        """Remember the key's outcome (``SET NX PX``); False when one was already recorded."""
        return bool(
            self.client.set(done_key(idempotency_key), outcome, nx=True, px=self.dedup_ttl_ms)
        )

    def start_cooldown(self, model_name: str, idempotency_key: str, urgent: bool) -> bool:
        """Whether this request may train now; if so the model's cooldown is (re)started.

        False: a cooldown started by another request is running and this one is not urgent.
        """
        if self.cooldown_ms <= 0:
            return True
        key = cooldown_key(model_name)
        if urgent:
            self.client.set(key, idempotency_key, px=self.cooldown_ms)
            return True
        if self.client.set(key, idempotency_key, nx=True, px=self.cooldown_ms):
            return True
        holder = self.client.get(key)
        return holder is not None and _text(holder) == idempotency_key

    def end_cooldown(self, model_name: str, idempotency_key: str) -> bool:
        """Lift the cooldown this request started (compare-and-delete): a retrain that
        failed trained nothing, so it must not hold other requests back."""
        return bool(self.client.eval(_RELEASE, 1, cooldown_key(model_name), idempotency_key))

    def remembered_run(self, idempotency_key: str) -> str | None:
        """The run an earlier (crashed) attempt of this request opened, if any."""
        value = self.client.get(run_key(idempotency_key))
        return None if value is None else _text(value)

    def remember_run(self, idempotency_key: str, run_id: str) -> None:
        """Record the run this request trains into, so a retry resumes it."""
        self.client.set(run_key(idempotency_key), run_id, px=self.dedup_ttl_ms)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
