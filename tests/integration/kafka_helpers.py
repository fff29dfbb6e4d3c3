"""Small helpers for integration tests that talk to the real broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Message


@dataclass(frozen=True)
class Record:
    """A consumed record with the non-optional fields a test asserts on."""

    partition: int
    offset: int
    key: bytes
    value: bytes

    @classmethod
    def of(cls, msg: Message) -> Record:
        partition, offset = msg.partition(), msg.offset()
        assert partition is not None and offset is not None
        return cls(partition, offset, msg.key() or b"", msg.value() or b"")


def poll_until(
    consumers: list[Consumer],
    done: Callable[[list[Message]], bool],
    timeout_s: float = 60.0,
) -> list[Message]:
    """Poll every consumer in turn until ``done(messages)`` or the timeout.

    The timeout only bounds a broken run; the assertion after it decides the test.
    """
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while not done(got) and time.monotonic() < deadline:
        for consumer in consumers:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                got.append(msg)
    return got


def wait_for_assignment(consumers: list[Consumer], timeout_s: float = 60.0) -> list[Message]:
    """Poll until every consumer has partitions assigned (group join finished).

    Polling may already return records; they are returned, never dropped.
    """
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for consumer in consumers:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                got.append(msg)
        if all(c.assignment() for c in consumers):
            return got
    raise AssertionError(f"group join did not finish in {timeout_s} s")
