"""``driftline canary watch --model NAME``: follow a canary live until it is decided.

Reads ``model.deployments`` from its current end (assigned partitions, no consumer group:
watching never moves the controller's offsets) and the rollout state in Redis. It prints
the canary as it stands, then one line per DeploymentEvent of the model: each step with
its new share and the evidence that passed it, and the final promotion or rollback with
the evidence that decided it.

The end offsets are taken *before* Redis is read, so a decision made between the two is
still read from the topic. Exit codes: 0 promoted; 1 rolled back; 2 unknown model, or no
canary in progress, or the canary vanished from Redis without a decision event (someone
cleared it by hand), or the broker or Redis does not answer; 3 ``--timeout`` passed; 130 Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from driftline.tail import quiet_librdkafka
from schemas.catalog import DEPLOYMENT_EVENT
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from schemas.kafka_config import consumer_config
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings
from schemas.topics import MODEL_DEPLOYMENTS

PROMOTED, ROLLED_BACK, NOTHING, TIMED_OUT, INTERRUPTED = 0, 1, 2, 3, 130
#: DeploymentEvent actions that end a canary, and the exit code of each.
FINAL = {"promoted": PROMOTED, "rolled_back": ROLLED_BACK}
#: How long Redis may show no canary before a missing decision event counts as "vanished":
#: every writer changes Redis first and publishes the event right after.
VANISHED_GRACE_S = 10.0


def describe_state(model: str, state: RolloutState | None) -> str:
    """One line: what takes the model's traffic now."""
    if state is None or not state.active:
        return f"{model}: no canary in progress"
    return f"{model}: canary version {state.canary_version} at {state.canary_share:.0%}"


def describe_event(event: Mapping[str, Any]) -> str:
    """One line per decision: when, what, share, why, and the evidence's numbers."""
    at = datetime.fromtimestamp(int(event["event_time"]) / 1000, tz=UTC).strftime("%H:%M:%S")
    action = str(event["action"])
    if action in ("canary_started", "canary_step"):
        what = f"{action}: version {event['canary_version']} at {event['canary_share']:.0%}"
    elif action == "promoted":
        what = f"promoted: version {event['champion_version']} is the champion"
    else:
        what = f"{action} (champion {event['champion_version']})"
    evidence = ", ".join(
        f"{k}={_number(v)}" for k, v in sorted((event.get("evidence") or {}).items())
    )
    return f"{at} {what}; {event['reason']}" + (f" [{evidence}]" if evidence else "")


def _number(value: float) -> str:
    """Whole numbers (counts, window starts in ms) whole; rates to four digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


@dataclass
class CanaryWatcher:
    """Poll the topic and Redis; :meth:`run` returns the exit code."""

    model: str
    kafka: KafkaSettings
    rollout: RolloutStore
    codec: Codec
    say: Callable[[str], None]
    timeout_s: float | None = None
    poll_s: float = 0.5

    def run(self) -> int:
        topic = MODEL_DEPLOYMENTS.prefixed(self.kafka.topic_prefix).name
        config = consumer_config(
            self.kafka, "driftline-canary-watch", **{"enable.partition.eof": False}
        )
        consumer = Consumer({**config, "logger": quiet_librdkafka("canary-watch")})
        try:
            found = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if found is None or found.error is not None or not found.partitions:
                self.say(f"topic {topic!r} does not exist (`driftline topics ensure`)")
                return NOTHING
            ends = [
                TopicPartition(topic, p, consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10)[1])
                for p in sorted(found.partitions)
            ]  # fmt: skip
            state = self.rollout.read(self.model)
            self.say(describe_state(self.model, state))
            if state is None or not state.active:
                return NOTHING
            consumer.assign(ends)
            return self._follow(consumer)
        finally:
            consumer.close()

    def _follow(self, consumer: Consumer) -> int:
        started = time.monotonic()
        inactive_since: float | None = None
        next_check = started
        while True:
            now = time.monotonic()
            if self.timeout_s is not None and now - started >= self.timeout_s:
                self.say(f"timed out after {self.timeout_s:g} s; the canary is still running")
                return TIMED_OUT
            message = consumer.poll(self.poll_s)
            if message is not None and message.error() is None:
                code = self._event(message.value())
                if code is not None:
                    return code
            if now >= next_check:  # Redis: did the canary vanish without a decision?
                next_check = now + 1.0
                state = self.rollout.read(self.model)
                if state is not None and state.active:
                    inactive_since = None
                elif inactive_since is None:
                    inactive_since = now
                elif now - inactive_since > VANISHED_GRACE_S:
                    self.say(f"{self.model}: the canary was cleared without a decision event")
                    return NOTHING

    def _event(self, raw: bytes | str | None) -> int | None:
        data = raw.encode() if isinstance(raw, str) else (raw or b"")
        try:
            decoded = self.codec.decode(data)
        except DecodeError:
            return None  # the controller dead-letters such records; nothing to show here
        if decoded.record_type != DEPLOYMENT_EVENT or decoded.value["model_name"] != self.model:
            return None
        self.say(describe_event(decoded.value))
        return FINAL.get(str(decoded.value["action"]))
