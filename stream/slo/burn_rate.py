"""Multi-window, multi-burn-rate evaluation of an availability and a latency SLO.

Pure functions on closed-window counts (Google SRE workbook, chapter 5, "Alerting on
SLOs", approach 6). An SLO with target ``T`` allows a share ``1 - T`` of bad requests
over its period (the error budget). Over a look-back window,

    burn rate = (bad requests / requests) / (1 - T)

so 1.0 spends the budget exactly over the period. A rule fires when the burn rate over
its long window *and* over its short window are both at or above its threshold: the
long window makes it significant, the short one makes it stop soon after the cause is
fixed. Thresholds come from the share of the budget the rule tolerates burning in its
long window: ``threshold = budget_share * period / long_window`` (2 % of a 30-day budget
in 1 h is 14.4x; 5 % in 6 h is 6x).

Bad requests are server errors for availability (client errors are the caller's fault
and count as good) and requests slower than the threshold for latency (every outcome:
a slow error is as slow for its caller).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

SloKind = Literal["availability", "latency"]
SLO_KINDS: Final[tuple[SloKind, ...]] = ("availability", "latency")
DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class SloTargets:
    """The two SLOs and the period their budgets are spread over.

    :param availability: share of requests without a server error (0.999).
    :param latency: share of requests at or under ``latency_threshold_ms`` (0.99).
    :param latency_threshold_ms: the latency SLO's threshold.
    :param period_s: the SLO period (30 days).
    """

    availability: float = 0.999
    latency: float = 0.99
    latency_threshold_ms: float = 1000.0
    period_s: float = 30 * DAY_S

    def __post_init__(self) -> None:
        for name in ("availability", "latency"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} target must be in (0, 1), got {value}")
        if self.latency_threshold_ms <= 0 or self.period_s <= 0:
            raise ValueError("latency_threshold_ms and period_s must be > 0")

    def target(self, slo: SloKind) -> float:
        """The target of ``slo``."""
        return self.availability if slo == "availability" else self.latency


@dataclass(frozen=True, slots=True)
class BurnRule:
    """One multi-window rule: ``severity`` fires when both windows burn at >= threshold.

    :param severity: the rule's name in records and alerts ("page", "ticket").
    :param long_s: long look-back window, seconds.
    :param short_s: short look-back window, seconds (the workbook uses long / 12).
    :param budget_share: share of the period's budget that may burn in ``long_s``.
    """

    severity: str
    long_s: int
    short_s: int
    budget_share: float

    def __post_init__(self) -> None:
        if not 0 < self.short_s <= self.long_s:
            raise ValueError(
                f"rule {self.severity}: need 0 < short_s <= long_s, got {self.short_s}, "
                f"{self.long_s}"
            )
        if not 0.0 < self.budget_share <= 1.0:
            raise ValueError(f"rule {self.severity}: budget_share must be in (0, 1]")

    def threshold(self, period_s: float) -> float:
        """Burn rate at which ``budget_share`` of the budget burns in ``long_s``."""
        return self.budget_share * period_s / self.long_s


#: The workbook's page and ticket rules (14.4x over 1 h / 5 min, 6x over 6 h / 30 min
#: with a 30-day period).
DEFAULT_RULES: Final = (
    BurnRule("page", 3600, 300, 0.02),
    BurnRule("ticket", 6 * 3600, 1800, 0.05),
)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What burn rates need of one closed window of one (model, variant)."""

    start_ms: int
    end_ms: int
    requests: int
    server_errors: int
    slow: int


def burn_rate(bad: int, total: int, target: float) -> float:
    """``(bad / total) / (1 - target)``; 0 when there were no requests.

    >>> round(burn_rate(2, 1000, 0.999), 6)
    2.0
    """
    if total <= 0:
        return 0.0
    return (bad / total) / (1.0 - target)


def duration_label(seconds: int) -> str:
    """A look-back window's key: the largest whole unit (``300`` -> ``5m``, ``3600`` -> ``1h``).

    >>> [duration_label(s) for s in (45, 300, 3600, 5400, 86400 * 3)]
    ['45s', '5m', '1h', '90m', '3d']
    """
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class BurnHistory:
    """Closed-window counts of one (model, variant), kept as long as the longest look-back.

    :param keep_ms: how far back from the newest window end counts are kept.
    """

    def __init__(self, keep_ms: int) -> None:
        self.keep_ms = keep_ms
        self.windows: list[WindowCounts] = []

    def add(self, counts: WindowCounts) -> None:
        """Insert in start order (a re-emitted window replaces itself); drop what expired."""
        starts = [w.start_ms for w in self.windows]
        i = bisect.bisect_left(starts, counts.start_ms)
        if i < len(self.windows) and self.windows[i].start_ms == counts.start_ms:
            self.windows[i] = counts
        else:
            self.windows.insert(i, counts)
        horizon = self.windows[-1].end_ms - self.keep_ms
        while self.windows and self.windows[0].end_ms <= horizon:
            self.windows.pop(0)

    def totals(self, end_ms: int, lookback_ms: int) -> tuple[int, int, int]:
        """(requests, server errors, slow requests) of the windows ending in
        ``(end_ms - lookback_ms, end_ms]``: the look-back rounded up to whole windows."""
        requests = errors = slow = 0
        for w in self.windows:
            if end_ms - lookback_ms < w.end_ms <= end_ms:
                requests += w.requests
                errors += w.server_errors
                slow += w.slow
        return requests, errors, slow


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """One rule evaluated for one SLO (a ``BurnRateAlert`` in the SloWindow record)."""

    slo: SloKind
    severity: str
    long_window: str
    short_window: str
    threshold: float
    long_burn_rate: float
    short_burn_rate: float
    firing: bool

    def record(self) -> dict[str, Any]:
        """The Avro ``BurnRateAlert`` value."""
        return {
            "slo": self.slo,
            "severity": self.severity,
            "long_window": self.long_window,
            "short_window": self.short_window,
            "threshold": self.threshold,
            "long_burn_rate": self.long_burn_rate,
            "short_burn_rate": self.short_burn_rate,
            "firing": self.firing,
        }


@dataclass(frozen=True, slots=True)
class BurnEvaluation:
    """Burn rates by look-back label for both SLOs, and every rule's result."""

    availability: dict[str, float]
    latency: dict[str, float]
    alerts: tuple[BurnAlert, ...]

    def rates(self, slo: SloKind) -> dict[str, float]:
        """Burn rates of ``slo`` by look-back label."""
        return self.availability if slo == "availability" else self.latency

    def firing(self) -> list[BurnAlert]:
        """The rules that fire."""
        return [a for a in self.alerts if a.firing]


def evaluate(
    history: BurnHistory, end_ms: int, targets: SloTargets, rules: Sequence[BurnRule]
) -> BurnEvaluation:
    """Burn rates over every rule's windows ending at ``end_ms``, and each rule's verdict."""
    lookbacks = sorted({s for r in rules for s in (r.long_s, r.short_s)})
    rates: dict[SloKind, dict[str, float]] = {"availability": {}, "latency": {}}
    for seconds in lookbacks:
        requests, errors, slow = history.totals(end_ms, seconds * 1000)
        label = duration_label(seconds)
        rates["availability"][label] = burn_rate(errors, requests, targets.availability)
        rates["latency"][label] = burn_rate(slow, requests, targets.latency)
    alerts: list[BurnAlert] = []
    for slo in SLO_KINDS:
        for rule in rules:
            threshold = rule.threshold(targets.period_s)
            long_label, short_label = duration_label(rule.long_s), duration_label(rule.short_s)
            long_rate, short_rate = rates[slo][long_label], rates[slo][short_label]
            alerts.append(
                BurnAlert(
                    slo=slo,
                    severity=rule.severity,
                    long_window=long_label,
                    short_window=short_label,
                    threshold=threshold,
                    long_burn_rate=long_rate,
                    short_burn_rate=short_rate,
                    firing=long_rate >= threshold and short_rate >= threshold,
                )
            )
    return BurnEvaluation(rates["availability"], rates["latency"], tuple(alerts))
