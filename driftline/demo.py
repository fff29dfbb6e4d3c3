"""``driftline demo`` (``make demo``): the whole loop, live, in about two minutes.

It starts the local stack exactly as ``make up`` does (:class:`~driftline.stack.LocalStack`,
which trains the baseline on a fresh data dir) with the demo's time scale in the
environment (5 s windows, alert rules with ``for = "10s"``, one window per canary step:
:func:`demo_environment`), then replays the ``gradual`` scenario through ``/predict`` at a
steady rate: clean breast-cancer rows first, then every feature drifting up to one
standard deviation. Everything the screen shows is read back from the topics
(:mod:`driftline.demo_monitor`): the drift score per window, SLO figures, alerts and the
rollout, until the loop has gone all the way round (drift detected -> alert -> retrain ->
MLflow run -> canary -> promotion). It ends with a timeline, the HTML drift report of the
traffic it sent and how to open the MLflow UI. Ctrl-C stops everything cleanly (exit 0).
Exit 1 when the stack cannot start or the loop did not complete within the timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.live import Live

from driftline.demo_monitor import LoopMonitor, LoopState, Milestone
from driftline.demo_view import TrafficView, clock, render, summary
from driftline.replay import HttpSender, ReplayBounds, ReplayCounts, ReplayEvent, scenario_events
from driftline.report_cli import build_report
from driftline.settings import DemoSettings, StackSettings
from driftline.stack import LocalStack, StopRequested
from schemas.exceptions import DriftlineError
from schemas.model_registry import ModelStore
from schemas.settings import DataSettings

console = Console()
#: The demo's alert rules: the shipped ones on the demo's time scale.
DEMO_RULES = Path(__file__).with_name("demo_rules.toml")
#: First words of the line printed once the stack is up and traffic starts.
STACK_UP = "stack up"
#: The scenario the demo replays (every feature drifts: drift_score reaches 1).
SCENARIO = "gradual"


def demo_environment(settings: DemoSettings) -> dict[str, str]:
    """The ``DRIFTLINE_*`` settings of the demo's time scale, for every process it starts.

    Windows of ``window_s`` close one second after their end (allowed lateness 1 s), no
    sliding windows, alert rules with ``for = "10s"``; the canary steps 10 % -> 50 % ->
    100 % -> promoted on one passing window of at least 5 canary requests per step, and
    its p99 latency only counts above 250 ms (a shared laptop's scheduler jitter must not
    roll a demo back; errors still do).
    """
    window = f"{settings.window_s:g}"
    return {
        "DRIFTLINE_DATA_DIR": str(settings.data_dir),
        "DRIFTLINE_DRIFT_WINDOW_S": window,
        "DRIFTLINE_DRIFT_ALLOWED_LATENESS_S": "1",
        "DRIFTLINE_DRIFT_SLIDING_S": "0",
        "DRIFTLINE_SLO_WINDOW_S": window,
        "DRIFTLINE_SLO_ALLOWED_LATENESS_S": "1",
        "DRIFTLINE_ALERTING_RULES_PATH": str(DEMO_RULES),
        "DRIFTLINE_CANARY_WINDOWS": "1",
        "DRIFTLINE_CANARY_MIN_REQUESTS": "5",
        "DRIFTLINE_CANARY_LATENCY_FLOOR_MS": "250",
    }


class DemoTraffic:
    """The gradual scenario through ``/predict`` in a thread, paced at ``rate``."""

    def __init__(self, url: str, model_name: str, settings: DemoSettings) -> None:
        count = max(1, round(settings.rate * settings.timeout_s))
        self.onset = round(settings.rate * settings.drift_after_s)
        self.full = self.onset + round(settings.rate * settings.ramp_s)
        self.events: list[ReplayEvent] = scenario_events(
            SCENARIO, count, self.onset / count, seed=2026,
            ramp=max(1, self.full - self.onset),
        )  # fmt: skip
        self.sender = HttpSender(url, model_name, concurrency=4)
        self.bounds = ReplayBounds(rate=settings.rate, duration_s=settings.timeout_s)
        self.counts = ReplayCounts()
        self.started: float | None = None
        self.drift_started: float | None = None
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> DemoTraffic:
        self.started = time.time()
        self._thread.start()
        return self

    def _run(self) -> None:
        self.counts = self.sender.run(self.events, self.bounds, self._seen)

    def _seen(self, counts: ReplayCounts) -> None:
        self.counts = counts
        if self.drift_started is None and counts.accepted + counts.failed >= self.onset:
            self.drift_started = time.time()

    def phase(self) -> str:
        done = self.counts.accepted + self.counts.failed
        if not self._thread.is_alive() and self.started is not None:
            return "stopped"
        if done < self.onset:
            return "clean"
        return "drifting" if done < self.full else "drifted"

    def stop(self) -> None:
        self.bounds.stop.set()
        self._thread.join(30)

    def drifted_rows(self) -> pd.DataFrame:
        """The features of the drifted events that were sent (for the HTML report)."""
        sent = self.counts.accepted + self.counts.failed
        rows = [e.features for e in self.events[self.onset : sent]]
        return pd.DataFrame(rows)


def demo(
    live: Annotated[
        bool, typer.Option(help="Live screen (rich); --no-live prints each stage as a line.")
    ] = True,
) -> None:
    """The whole loop live: traffic, drift, alert, retrain, MLflow run, canary, promotion."""
    settings = DemoSettings()
    stopper = StopRequested()
    stopper.install()
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a fresh story on every run
    for key, value in demo_environment(settings).items():
        os.environ.setdefault(key, value)
    stack = LocalStack(stack=StackSettings(data_dir=settings.data_dir))
    console.print(
        f"Driftline demo: starting the local stack in {settings.data_dir} "
        "(trains the baseline first)...",
        highlight=False,
    )
    started = time.monotonic()
    starting = console.status("starting the stack...") if live else contextlib.nullcontext()
    try:
        with starting:
            stack.start()
    except DriftlineError as exc:
        console.print(f"[red]could not start the stack:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    ready = ", ".join(
        f"{ep.name} {ep.startup_s:.1f} s" for ep in stack.endpoints if ep.startup_s is not None
    )
    console.print(
        f"{STACK_UP} in {time.monotonic() - started:.0f} s ({ready}); "
        f"skipped: {', '.join(name for name, _ in stack.skipped) or 'nothing'}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        outcome = _run_loop(stack, settings, stopper, live)
    finally:
        console.print("stopping the stack...")
        stopping = time.monotonic()
        stack.stop()  # clients side by side, then Redis and the broker
        console.print(f"stack stopped in {time.monotonic() - stopping:.0f} s", highlight=False)
    interrupted, state, traffic, report = outcome
    timeline = sorted(_traffic_milestones(traffic, settings) + state.timeline(), key=lambda m: m.at)
    for line in summary(
        timeline,
        traffic.started,
        report,
        settings.data_dir,
        state.missing(),
    ):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if interrupted:
        console.print(f"stopped cleanly ({stopper.signal_name}).")
        return
    if not state.complete():
        console.print(
            f"[red]the loop did not complete[/] (at most {settings.timeout_s:g} s of traffic; "
            f"logs in {settings.data_dir / 'logs'})",
            highlight=False,
        )
        raise typer.Exit(1)
    console.print("The loop went all the way round: demo complete.")


def _run_loop(
    stack: LocalStack, settings: DemoSettings, stopper: StopRequested, live: bool
) -> tuple[bool, LoopState, DemoTraffic, Path | None]:
    """Traffic and monitor until the loop completes, the timeout, a signal or a dead process.
    Returns (interrupted, state, traffic, report path)."""
    model = stack.serving.model_name
    store = ModelStore.from_settings(DataSettings(data_dir=settings.data_dir))
    state = LoopState(model_name=model, run_of=store.run_id)
    monitor = LoopMonitor(stack.kafka, state).start()
    url = next(ep.address for ep in stack.endpoints if ep.name == "serving")
    traffic = DemoTraffic(url, model, settings).start()
    printed: set[str] = set()
    interrupted = False
    screen = Live(console=console, refresh_per_second=4) if live else None
    try:
        with screen or contextlib.nullcontext():
            while True:
                if stopper.event.wait(0.25):
                    interrupted = True
                    break
                if screen is not None:
                    screen.update(render(state, _traffic_view(traffic, settings)))
                else:
                    _print_new(state, traffic, printed)
                dead = next((p for p in stack._processes if not p.is_running()), None)
                if dead is not None:
                    console.print(f"[red]{dead.name} exited unexpectedly[/] (log {dead.log_path})")
                    break
                if state.complete() or traffic.phase() == "stopped":
                    break
    finally:
        traffic.stop()
        monitor.stop()
    if not live:
        _print_new(state, traffic, printed)
    report = _write_report(traffic, settings.data_dir, model, stack.champion_version or "1")
    return interrupted, state, traffic, report


def _traffic_view(traffic: DemoTraffic, settings: DemoSettings) -> TrafficView:
    counts = traffic.counts
    elapsed = time.time() - traffic.started if traffic.started else 0.0
    return TrafficView(
        counts.sent, counts.accepted, counts.failed, settings.rate, traffic.phase(), elapsed,
        settings.timeout_s,
    )  # fmt: skip


def _print_new(state: LoopState, traffic: DemoTraffic, printed: set[str]) -> None:
    """--no-live: one line per stage (and the drift injection) the first time it is seen."""
    with state.lock:
        milestones = state.timeline()
    if traffic.drift_started is not None and "drift injected" not in printed:
        printed.add("drift injected")
        console.print(f"{clock(traffic.drift_started)} drift injected", highlight=False)
    for m in milestones:
        if m.stage not in printed:
            printed.add(m.stage)
            console.print(f"{clock(m.at)} {m.stage}: {m.detail}", highlight=False, soft_wrap=True)


def _traffic_milestones(traffic: DemoTraffic, settings: DemoSettings) -> list[Milestone]:
    out = []
    if traffic.started is not None:
        out.append(Milestone("traffic", traffic.started, f"{settings.rate:g} requests/s"))
    if traffic.drift_started is not None:
        out.append(
            Milestone(
                "drift injected", traffic.drift_started,
                f"every feature moves to +1 sd over {settings.ramp_s:g} s (scenario {SCENARIO})",
            )
        )  # fmt: skip
    return out


def _write_report(traffic: DemoTraffic, data_dir: Path, model: str, version: str) -> Path | None:
    """The HTML drift report of the drifted traffic against the champion's profile."""
    rows = traffic.drifted_rows()
    profile = data_dir / "profiles" / model / f"{version}.json"
    if rows.empty or not profile.is_file():
        return None
    reports = data_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    current = reports / "demo-drifted-traffic.csv"
    rows.to_csv(current, index=False)
    out = reports / f"demo-drift-{time.strftime('%Y%m%dT%H%M%S')}.html"
    out.write_text(build_report(profile, current), encoding="utf-8")
    return out
