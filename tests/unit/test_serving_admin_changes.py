"""Rollout changes from /admin: Redis down is a 503, an unrecorded change a 502, and the
replica that made a change (or half of one) applies it at once."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis
from fastapi import HTTPException

from schemas.exceptions import DeliveryError
from serving.api.admin import _rollout_change
from serving.rollout import RolloutWatcher


class _Watcher:
    polls = 0

    def poll_once(self) -> None:
        self.polls += 1


def _run(error: Exception | None, done: str = "promoted") -> tuple[_Watcher, HTTPException | None]:
    watcher = _Watcher()

    async def change() -> None:
        async with _rollout_change(cast(RolloutWatcher, watcher), done=done):
            if error is not None:
                raise error

    try:
        asyncio.run(change())
    except HTTPException as exc:
        return watcher, exc
    return watcher, None


def test_success_applies_the_change_to_this_replica() -> None:
    watcher, error = _run(None)
    assert error is None and watcher.polls == 1


def test_redis_failure_is_503_and_nothing_is_applied() -> None:
    watcher, error = _run(redis.ConnectionError("refused"))
    assert error is not None and error.status_code == 503
    assert "Redis" in str(error.detail) and watcher.polls == 0


def test_unrecorded_change_is_502_saying_it_happened() -> None:
    watcher, error = _run(DeliveryError("no ack"), done="rolled back")
    assert error is not None and error.status_code == 502
    assert str(error.detail).startswith("rolled back, but the DeploymentEvent was not recorded")
    assert watcher.polls == 1  # Redis changed: this replica follows at once


def test_client_errors_pass_through_untouched() -> None:
    watcher, error = _run(HTTPException(409, "no canary to promote"))
    assert error is not None and error.status_code == 409 and watcher.polls == 0


@pytest.mark.parametrize("done", ["promoted", "rolled back"])
def test_message_names_the_change(done: str) -> None:
    _, error = _run(DeliveryError("x"), done=done)
    assert error is not None and done in str(error.detail)
