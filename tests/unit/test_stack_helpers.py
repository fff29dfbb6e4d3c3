"""Pure helpers of the launcher: URL redaction and signal handling."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from driftline.stack import StopRequested, _redact_url
from schemas.settings import RedisSettings


def test_redis_password_is_redacted_for_display() -> None:
    shown = _redact_url(RedisSettings(url=SecretStr("redis://app:pw-123@cache:6380/2")))
    assert shown == "redis://app:***@cache:6380/2"
    plain = _redact_url(RedisSettings(url=SecretStr("redis://cache:6379/0")))
    assert plain == "redis://cache:6379/0"


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_handlers")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_becomes_a_stop_request(sig: signal.Signals) -> None:
    stopper = StopRequested()
    stopper.install()
    os.kill(os.getpid(), sig)
    assert stopper.wait(poll_s=0.01) == sig.name
