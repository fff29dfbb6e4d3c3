"""Cooldown, de-dup and the training lock, on a real redis-server."""

from __future__ import annotations

import time

import redis

from retrain.coordination import Admission, ModelLock, cooldown_key, lock_key
from retrain.exceptions import LockBusyError


def test_dedup_records_the_first_outcome_only(redis_client: redis.Redis) -> None:
    admission = Admission(redis_client, cooldown_s=60, dedup_ttl_s=60)
    assert admission.outcome_of("k") is None
    assert admission.record("k", "challenger:r1:2")
    assert not admission.record("k", "suppressed")
    assert admission.outcome_of("k") == "challenger:r1:2"
    assert 0 < redis_client.pttl("driftline:retrain:done:k") <= 60_000


def test_cooldown_admits_one_request_its_own_retry_and_urgent_ones(
    redis_client: redis.Redis,
) -> None:
    admission = Admission(redis_client, cooldown_s=60, dedup_ttl_s=60)
    assert admission.start_cooldown("m", "first", urgent=False)
    assert admission.start_cooldown("m", "first", urgent=False)  # its own retry
    assert not any(admission.start_cooldown("m", f"k{i}", urgent=False) for i in range(1000))
    assert admission.start_cooldown("m", "urgent", urgent=True)
    assert redis_client.get(cooldown_key("m")) == b"urgent"  # urgent restarts the cooldown
    assert admission.start_cooldown("other-model", "k1", urgent=False)


def test_cooldown_ends_with_its_ttl(redis_client: redis.Redis) -> None:
    admission = Admission(redis_client, cooldown_s=0.2, dedup_ttl_s=60)
    assert admission.start_cooldown("m", "a", urgent=False)
    redis_client.pexpire(cooldown_key("m"), 1)  # what the ttl does, without waiting for it
    time.sleep(0.01)
    assert admission.start_cooldown("m", "b", urgent=False)


def test_zero_cooldown_admits_everything(redis_client: redis.Redis) -> None:
    admission = Admission(redis_client, cooldown_s=0, dedup_ttl_s=60)
    assert all(admission.start_cooldown("m", f"k{i}", urgent=False) for i in range(3))


def test_lock_is_exclusive_and_only_its_holder_releases_it(redis_client: redis.Redis) -> None:
    first = ModelLock(redis_client, "m", ttl_s=30)
    second = ModelLock(redis_client, "m", ttl_s=30)
    assert first.try_acquire() and not second.try_acquire()
    assert not second.release() and not second.renew()  # compare-and-delete / -expire
    assert redis_client.get(lock_key("m")) == first.token.encode()
    try:
        second.acquire(wait_s=0.2, poll_s=0.05)
    except LockBusyError as exc:
        assert "held by another worker" in str(exc)
    else:
        raise AssertionError("second got a held lock")
    assert first.release() and second.try_acquire()


def test_a_dead_holders_lock_expires(redis_client: redis.Redis) -> None:
    dead = ModelLock(redis_client, "m", ttl_s=0.3)
    assert dead.try_acquire()  # and never renewed: the worker died
    alive = ModelLock(redis_client, "m", ttl_s=30)
    alive.acquire(wait_s=10, poll_s=0.05)
    assert redis_client.get(lock_key("m")) == alive.token.encode()


def test_renewal_keeps_the_lock_past_its_ttl_and_notices_losing_it(
    redis_client: redis.Redis,
) -> None:
    lock = ModelLock(redis_client, "m", ttl_s=1.0)
    assert lock.try_acquire()
    with lock:
        time.sleep(2.5)  # two and a half ttls: without renewal the key would be gone
        assert redis_client.get(lock_key("m")) == lock.token.encode() and not lock.lost
        redis_client.set(lock_key("m"), "someone-else")
        deadline = time.monotonic() + 10
        while not lock.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lock.lost
    assert redis_client.get(lock_key("m")) == b"someone-else"  # not ours: left alone


def test_only_the_request_that_started_a_cooldown_can_lift_it(redis_client: redis.Redis) -> None:
    admission = Admission(redis_client, cooldown_s=60, dedup_ttl_s=60)
    assert admission.start_cooldown("m", "failed-one", urgent=False)
    assert not admission.end_cooldown("m", "someone-else")
    assert not admission.start_cooldown("m", "next", urgent=False)
    assert admission.end_cooldown("m", "failed-one")
    assert admission.start_cooldown("m", "next", urgent=False)
