"""The alert rules file (TOML, shipped in the package), validated once at start-up.

A rule states a condition on one field of a record stream (``drift`` or ``slo``), how
long it must hold (``for``, in event time), and the value it must return beyond before a
firing alert clears (``clear_threshold``: hysteresis). Rules with ``source =
"prometheus"`` only document an alert that Prometheus evaluates; the stream skips them.
A bad file fails loudly with the rule and the field at fault.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from stream.exceptions import AlertRulesError

#: Alertmanager ``severity`` label values, most urgent first.
SEVERITIES = ("critical", "high", "warning", "info")
Severity = Literal["critical", "high", "warning", "info"]
Source = Literal["drift", "slo", "prometheus"]

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: Any) -> float:
    """Seconds of a Prometheus-style duration (``15m``, ``1h30m``, ``0s``) or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) and value else None
    if match is None:
        raise ValueError(f"duration like '15m', '1h30m' or '0s' expected, got {value!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    """``900.0`` -> ``15m``: the inverse of :func:`parse_duration` for messages."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


Duration = Annotated[float, BeforeValidator(parse_duration)]

#: Labels the evaluator sets itself (identity of the window and of the evaluator).
RESERVED_LABELS = {"alertname", "severity", "evaluator", "model", "variant", "version"}

#: Keys a summary or description template may use (see :mod:`stream.alerting.alerts`).
TEMPLATE_KEYS = {
    "model": "m", "version": "1", "variant": "baseline", "value": 1.0, "threshold": 1.0,
    "clear_threshold": 1.0, "for": "15m", "window": "w", "since": "s", "requests": 1,
    "drifted_features": "f",
}  # fmt: skip


class AlertRule(BaseModel):
    """One alert: its identity, condition, hysteresis and what a firing also does."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="Unique rule id.")
    alertname: str | None = Field(
        default=None, pattern=r"^[A-Z][A-Za-z0-9]*$", description="Default: the rule's name."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Static labels, e.g. slo = 'latency'."
    )
    severity: Severity
    source: Source
    metric: tuple[str, ...] = Field(default=(), description="Record field(s) compared.")
    op: Literal[">", "<"] = ">"
    threshold: float
    clear_threshold: float | None = None
    for_s: Duration = Field(default=0.0, alias="for")
    min_count: int = Field(default=0, ge=0)
    variants: tuple[str, ...] | None = None
    window_kind: str = "tumbling"
    retrain: bool = False
    urgency: Literal["low", "normal", "high"] = "normal"
    summary: str
    description: str
    runbook: str | None = Field(default=None, description="Anchor in the runbook.")

    @model_validator(mode="before")
    @classmethod
    def _metric_as_tuple(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("metric"), str):
            data = {**data, "metric": (data["metric"],)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        if self.source != "prometheus" and not self.metric:
            raise ValueError(f"source {self.source!r} needs a metric")
        clear = self.clear
        if (self.op == ">" and clear > self.threshold) or (
            self.op == "<" and clear < self.threshold
        ):
            raise ValueError(
                f"clear_threshold {clear} is on the breaching side of threshold "
                f"{self.threshold} for op {self.op!r}: the alert could never clear"
            )
        reserved = sorted(set(self.labels) & RESERVED_LABELS)
        if reserved:
            raise ValueError(f"labels {reserved} are set by the evaluator, not the rule")
        if self.variants is not None and self.source != "slo":
            raise ValueError("variants only apply to source 'slo'")
        for field in ("summary", "description"):
            try:
                getattr(self, field).format(**TEMPLATE_KEYS)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"{field} template: {exc!r}; usable keys: {sorted(TEMPLATE_KEYS)}"
                ) from exc
        return self

    @property
    def clear(self) -> float:
        """The clearing threshold (``threshold`` when the file gives none)."""
        return self.threshold if self.clear_threshold is None else self.clear_threshold

    @property
    def alert(self) -> str:
        """The ``alertname`` label."""
        return self.alertname or self.name

    @property
    def anchor(self) -> str:
        """Runbook anchor: the lower-cased alert name unless the file names one."""
        return self.runbook or self.alert.lower()

    def breaches(self, value: float) -> bool:
        """Whether ``value`` is on the firing side of the threshold."""
        return value > self.threshold if self.op == ">" else value < self.threshold

    def cleared(self, value: float) -> bool:
        """Whether ``value`` is back at or beyond the clearing threshold."""
        return value <= self.clear if self.op == ">" else value >= self.clear


class RulesConfig(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runbook_base_url: str = "docs/runbook.md"
    rules: tuple[AlertRule, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> RulesConfig:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {dupes}")
        alerts = [(r.alert, tuple(sorted(r.labels.items()))) for r in self.rules]
        clashes = sorted({a[0] for a in alerts if alerts.count(a) > 1})
        if clashes:
            raise ValueError(f"rules {clashes} share an alertname and labels: give them labels")
        return self

    def for_source(self, source: Source) -> tuple[AlertRule, ...]:
        """The rules evaluated on one record stream."""
        return tuple(r for r in self.rules if r.source == source)

    def runbook_url(self, rule: AlertRule) -> str:
        return f"{self.runbook_base_url}#{rule.anchor}"


def default_rules_path() -> Path:
    """The rules file shipped with the package."""
    return Path(str(resources.files("stream.alerting").joinpath("rules.toml")))


def load_rules(path: Path | None = None) -> RulesConfig:
    """Read and validate a rules file (the shipped one when ``path`` is None).

    :raises AlertRulesError: unreadable file, bad TOML, or an invalid rule (the message
        names the file, the rule and the field).
    """
    path = path or default_rules_path()
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise AlertRulesError(f"cannot read alert rules {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AlertRulesError(f"alert rules {path} are not valid TOML: {exc}") from exc
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(data, err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise AlertRulesError(f"alert rules {path}: {problems}") from None


def _where(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """``rules.2.threshold`` -> ``rule 'ServingErrorRateHigh' (#3) threshold``."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules", [])
        name = rules[loc[1]].get("name", "?") if loc[1] < len(rules) else "?"
        rest = ".".join(str(p) for p in loc[2:])
        return f"rule {name!r} (#{loc[1] + 1})" + (f" {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "file"
