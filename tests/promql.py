"""Metric names in PromQL expressions, and the expressions of dashboards and rule files.

No PromQL parser is packaged for Python, and promtool (2.42, Debian) checks syntax but
does not print an expression's selectors. So this reads names the way the grammar
separates them: string literals, comments, ranges (``[5m]``), label matchers (``{...}``)
and label lists (``by (...)``, ``on (...)``, ...) go first; what remains is numbers,
operators, keywords, functions and aggregations (an identifier followed by ``(``) and
metric names. A ``{__name__=~"..."}`` selector is returned as a regex to match.
Grafana's template variables (``$model``, ``$__rate_interval``) are replaced first.
The syntax itself is checked by promtool (tests/unit/test_grafana_dashboards.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
        "group_right", "offset", "bool", "inf", "nan", "atan2",
    }
)  # fmt: skip
#: Series Prometheus makes itself: rule states and scrape health.
BUILTIN = frozenset(
    {
        "ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds", "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling", "scrape_series_added",
    }
)  # fmt: skip
GRAFANA_RANGES = re.compile(r"\$\{?(__rate_interval|__interval|__range)\}?")
GRAFANA_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*\}?")
NAME_MATCHER = re.compile(r"""__name__\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
COMMENT = re.compile(r"#[^\n]*")
RANGE = re.compile(r"\[[^\]]*\]")
MATCHERS = re.compile(r"\{[^}]*\}")
LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
TOKEN = re.compile(
    r"(?P<number>0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*|\.\d+)"
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
)
LABEL_VALUES = re.compile(r"label_values\(\s*(.*?)\s*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Names:
    """What an expression selects: exact metric names and ``__name__`` regexes."""

    exact: frozenset[str]
    patterns: frozenset[str] = field(default_factory=frozenset)


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's template variables so the expression is plain PromQL."""
    expr = GRAFANA_RANGES.sub("5m", expr)
    return GRAFANA_VARIABLE.sub(".*", expr)


def metric_names(expr: str) -> Names:
    """The metric names an expression selects (see the module docstring)."""
    patterns = {_unquote(value) for op, value in NAME_MATCHER.findall(expr) if op in ("=~", "=")}
    exact = {p for p in patterns if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", p)}
    text = COMMENT.sub(" ", STRING.sub('""', expr))
    text = MATCHERS.sub(" ", RANGE.sub(" ", text))
    text = LABEL_LIST.sub(" ", text)
    for match in TOKEN.finditer(text):
        name = match.group("ident")
        if name is None or match.group("call") or name in KEYWORDS:
            continue
        exact.add(name)
    return Names(frozenset(exact), frozenset(patterns - exact))


def _unquote(literal: str) -> str:
    return literal[1:-1].encode().decode("unicode_escape")


def dashboard_expressions(path: Path) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query in a Grafana dashboard JSON, variables replaced.

    Panel targets (``expr``), nested rows included, and query variables
    (``label_values(metric, label)`` selects ``metric``).
    """
    board = json.loads(path.read_text())
    for where, expr in _exprs(board.get("panels", []), board.get("title", path.name)):
        yield where, grafana_to_promql(expr)
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found = LABEL_VALUES.match(text.strip())
        if found:
            args = found.group(1).rsplit(",", 1)
            if len(args) == 2:
                yield f"{board['title']}: variable {variable['name']}", args[0]
        elif text and variable.get("type") == "query":
            yield f"{board['title']}: variable {variable['name']}", grafana_to_promql(text)


def _exprs(panels: list[dict[str, Any]], where: str) -> Iterator[tuple[str, str]]:
    for panel in panels:
        title = f"{where}: {panel.get('title', panel.get('id'))}"
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"{title} [{target.get('refId')}]", str(target["expr"])
        yield from _exprs(panel.get("panels", []), where)


def rule_expressions(path: Path) -> Iterator[tuple[str, str]]:
    """(rule name, PromQL) of every alerting and recording rule in a rules file."""
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], str(rule["expr"])


def recorded_names(path: Path) -> set[str]:
    """The series a rules file records (``record:``)."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
