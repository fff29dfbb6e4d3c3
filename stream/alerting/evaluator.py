"""The rule state machine: records in, firing and resolved transitions out (pure, no I/O).

Per rule and alert identity (alertname plus labels model, variant, and version for
drift; every alert also carries severity and ``evaluator="stream"``) one state moves
``inactive -> pending -> firing -> inactive``:

- a window whose value breaches ``threshold`` starts (or continues) a breach;
- the breach fires once it has lasted ``for`` in event time: the newest window's end
  minus the first breaching window's start;
- a pending breach ends at the first window that does not breach, or after a hole in the
  windows longer than one window (no data is no evidence of a lasting breach);
- a firing alert stays firing until a window is back at or beyond ``clear_threshold``
  (hysteresis: a value hovering at ``threshold`` neither flaps nor re-fires);
- a window with fewer than ``min_count`` events, or without the metric, changes nothing;
- a window no newer than the last one seen for that identity is a replay and is ignored,
  so at-least-once delivery of the input never fires or resolves twice.

Event time, not wall time, decides everything here, so a replay of the same records
gives the same transitions (and the same idempotency keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from stream.alerting.rules import AlertRule, RulesConfig, Source

#: ``evaluator`` label: Alertmanager mutes Prometheus's twin of a stream alert with it.
EVALUATOR = "stream"
#: ``variant`` label of drift alerts: a DriftScore covers all traffic of one version.
ALL_VARIANTS = "all"


class Status(Enum):
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class Observation:
    """One window of one stream, as the rules see it."""

    source: Source
    labels: tuple[tuple[str, str], ...]
    model: str
    version: str | None
    variant: str
    window_start: int
    window_end: int
    count: int
    record: Mapping[str, Any]

    @classmethod
    def from_drift_score(cls, record: Mapping[str, Any]) -> Observation:
        model, version = str(record["model_name"]), str(record["model_version"])
        labels = (("model", model), ("variant", ALL_VARIANTS), ("version", version))
        return cls(
            "drift", labels, model, version, ALL_VARIANTS, int(record["window_start"]),
            int(record["window_end"]), int(record["event_count"]), record,
        )  # fmt: skip

    @classmethod
    def from_slo_window(cls, record: Mapping[str, Any]) -> Observation:
        model, variant = str(record["model_name"]), str(record["variant"])
        version = record.get("model_version")
        return cls(
            "slo", (("model", model), ("variant", variant)), model,
            None if version is None else str(version), variant, int(record["window_start"]),
            int(record["window_end"]), int(record["request_count"]), record,
        )  # fmt: skip


@dataclass(slots=True)
class AlertState:
    """Where one alert identity stands."""

    status: Status
    since: int
    last_end: int
    value: float
    fired_at: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert identity started firing or resolved, with the window that decided it."""

    rule: AlertRule
    state: Literal["firing", "resolved"]
    labels: dict[str, str]
    since: int
    at: int
    value: float
    observation: Observation


@dataclass
class Evaluator:
    """Apply every rule of a :class:`RulesConfig` to DriftScores and SloWindows."""

    config: RulesConfig
    states: dict[tuple[str, tuple[tuple[str, str], ...]], AlertState] = field(default_factory=dict)
    #: Last window end seen per (rule, identity), also for inactive identities (replays).
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict)

    def observe(self, obs: Observation) -> list[Transition]:
        """Feed one window; return the transitions it caused (usually none)."""
        out: list[Transition] = []
        for rule in self.config.for_source(obs.source):
            transition = self._apply(rule, obs)
            if transition is not None:
                out.append(transition)
        return out

    def _apply(self, rule: AlertRule, obs: Observation) -> Transition | None:
        if not _selected(rule, obs):
            return None
        key = (rule.name, obs.labels)
        last = self.seen.get(key)
        if last is not None and obs.window_end <= last:
            return None  # a replayed or out-of-order window: already accounted for
        value = metric_value(rule, obs.record)
        if value is None or obs.count < rule.min_count:
            return None
        self.seen[key] = obs.window_end
        state = self.states.get(key)
        if state is not None and state.status is Status.FIRING:
            state.last_end, state.value = obs.window_end, value
            if rule.cleared(value):
                del self.states[key]
                return self._transition(rule, "resolved", obs, state.since, value)
            return None
        if not rule.breaches(value):
            self.states.pop(key, None)
            return None
        hole = state is not None and obs.window_start - state.last_end > (
            obs.window_end - obs.window_start
        )
        if state is None or hole:
            state = AlertState(Status.PENDING, obs.window_start, obs.window_end, value)
            self.states[key] = state
        state.last_end, state.value = obs.window_end, value
        if obs.window_end - state.since >= rule.for_s * 1000:
            state.status, state.fired_at = Status.FIRING, obs.window_end
            return self._transition(rule, "firing", obs, state.since, value)
        return None

    @staticmethod
    def _transition(
        rule: AlertRule, state: Literal["firing", "resolved"], obs: Observation, since: int,
        value: float,
    ) -> Transition:  # fmt: skip
        labels = {
            "alertname": rule.alert, "severity": rule.severity, "evaluator": EVALUATOR,
            **rule.labels, **dict(obs.labels),
        }  # fmt: skip
        return Transition(rule, state, labels, since, obs.window_end, value, obs)


def _selected(rule: AlertRule, obs: Observation) -> bool:
    if rule.source == "drift":
        return str(obs.record.get("window_kind", "tumbling")) == rule.window_kind
    return rule.variants is None or obs.variant in rule.variants


def metric_value(rule: AlertRule, record: Mapping[str, Any]) -> float | None:
    """The rule's value in ``record``; None when any named metric is absent.

    Several metrics mean "all of them breach": the smallest counts for ``>``, the
    largest for ``<``.
    """
    values: list[float] = []
    for name in rule.metric:
        head, _, tail = name.partition(".")
        raw = record.get(head)
        if tail:
            raw = raw.get(tail) if isinstance(raw, Mapping) else None
        if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        values.append(float(raw))
    if not values:
        return None
    return min(values) if rule.op == ">" else max(values)
