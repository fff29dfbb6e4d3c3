"""How ``make demo`` looks: the live screen (rich) and the closing summary.

Pure rendering of a :class:`~driftline.demo_monitor.LoopState` and the traffic counts:
no I/O here, so the screen can be redrawn as often as rich likes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from driftline.demo_monitor import STAGES, LoopState, Milestone


@dataclass(frozen=True)
class TrafficView:
    """The traffic side of the screen."""

    sent: int
    accepted: int
    failed: int
    rate: float
    phase: str  # "clean", "drifting", "drifted", "stopped"
    elapsed_s: float
    timeout_s: float


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def render(state: LoopState, traffic: TrafficView) -> RenderableType:
    """The whole live screen."""
    with state.lock:
        drift = list(state.drift_windows)
        slo = dict(state.slo)
        alerts = list(state.alerts.values())
        rollout = dict(state.rollout)
        milestones = dict(state.milestones)
    return Group(
        _traffic(traffic),
        _drift_table(drift),
        _slo_table(slo),
        _alerts(alerts),
        _rollout(rollout),
        _stages(milestones, traffic),
    )


def _traffic(t: TrafficView) -> RenderableType:
    bar = ProgressBar(total=t.timeout_s, completed=min(t.elapsed_s, t.timeout_s), width=40)
    line = Text.assemble(
        ("traffic ", "bold"),
        f"{t.rate:g}/s to /predict  sent {t.sent}  accepted {t.accepted}  failed {t.failed}  ",
        (t.phase, "yellow" if t.phase != "clean" else "green"),
        f"  {t.elapsed_s:.0f} s of at most {t.timeout_s:.0f} s",
    )
    return Group(line, bar)


def _drift_table(windows: Sequence[dict[str, Any]]) -> RenderableType:
    table = Table(title="drift score per window", expand=False, title_justify="left")
    for column in ("window", "version", "events", "score", "", "flag"):
        table.add_column(column)
    for w in windows:
        score = float(w["drift_score"])
        start = int(w["window_start"]) / 1000
        flag = "CRITICAL" if w.get("critical") else ("drift" if w.get("drifted") else "ok")
        style = "red" if w.get("critical") else ("yellow" if w.get("drifted") else "green")
        table.add_row(
            clock(start), str(w["model_version"]), str(w["event_count"]), f"{score:.2f}",
            ProgressBar(total=1.0, completed=score, width=20, complete_style=style,
                        finished_style=style),
            Text(flag, style=style),
        )  # fmt: skip
    return table


def _slo_table(slo: dict[str, dict[str, Any]]) -> RenderableType:
    table = Table(title="SLO, latest window per variant", title_justify="left")
    for column in ("variant", "version", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column)
    for variant, w in sorted(slo.items()):
        table.add_row(
            variant, str(w.get("model_version")), str(w["request_count"]),
            f"{float(w['error_rate']):.1%}",
            *(f"{float(w[k]):.1f}" for k in ("latency_p50_ms", "latency_p95_ms",
                                             "latency_p99_ms")),
        )  # fmt: skip
    return table


def _alerts(alerts: Sequence[dict[str, Any]]) -> RenderableType:
    if not alerts:
        return Text("alerts: none")
    lines = [
        Text.assemble(
            ("alert ", "bold"),
            (str(a["state"]), "red" if a["state"] == "firing" else "green"),
            f" {a['alert_name']} ({a['severity']}) "
            f"{(a.get('annotations') or {}).get('summary', '')}",
        )
        for a in alerts
    ]
    return Group(*lines)


def _rollout(rollout: dict[str, Any]) -> RenderableType:
    if not rollout:
        return Text("rollout: champion only (no DeploymentEvent yet)")
    canary = rollout.get("canary_version")
    share = float(rollout.get("canary_share") or 0.0)
    return Text.assemble(
        ("rollout ", "bold"),
        f"{rollout.get('action')}: champion v{rollout.get('champion_version')}",
        f", canary v{canary} at {share:.0%}" if canary else "",
        f" ({rollout.get('reason')})",
    )


def _stages(milestones: dict[str, Milestone], traffic: TrafficView) -> RenderableType:
    table = Table(title="the loop", title_justify="left", show_header=False)
    table.add_column("stage")
    table.add_column("at")
    table.add_column("what")
    for stage in STAGES:
        m = milestones.get(stage)
        if m is None:
            table.add_row(Text(stage, style="dim"), "", Text("waiting", style="dim"))
        else:
            table.add_row(Text(stage, style="green"), clock(m.at), m.detail)
    return Panel(table, expand=False)


def summary(
    timeline: Sequence[Milestone],
    traffic_start: float | None,
    report: Path | None,
    data_dir: Path,
    missing: Sequence[str],
) -> list[str]:
    """The closing lines: what happened when (``timeline`` in order), the report, how to
    open MLflow."""
    lines = ["", "Driftline demo: what happened"]
    for m in timeline:
        since = f"+{m.at - traffic_start:5.1f} s" if traffic_start else ""
        lines.append(f"  {clock(m.at)} {since}  {m.stage:<15} {m.detail}")
    if missing:
        lines.append(f"  not reached: {', '.join(missing)}")
    if report is not None:
        lines.append(f"HTML drift report (the drifted traffic vs the reference): {report}")
    lines.append(
        f"MLflow UI: DRIFTLINE_DATA_DIR={data_dir} make mlflow-ui  (then http://127.0.0.1:5000)"
    )
    lines.append(f"Logs of every process: {data_dir / 'logs'}")
    return lines
