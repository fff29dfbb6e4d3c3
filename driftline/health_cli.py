"""``driftline health``: one line per component, exit 1 when a configured one is down."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from driftline.health import COMPONENTS, HealthResult, deployment_probes, run_probes
from driftline.settings import OperatorSettings

_STYLE = {"up": "green", "down": "bold red", "not configured": "yellow", "skipped": "dim"}


def health(
    skip: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A component this deployment does not run (repeatable): {', '.join(COMPONENTS)}."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Seconds each probe may take (default DRIFTLINE_HEALTH_TIMEOUT_S)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Check every component of the deployment; exit 1 if a configured one is down.

    Broker, Redis, MLflow, serving, processors, retrain worker, canary controller,
    Alertmanager and Prometheus: one line each, every probe bounded.
    """
    unknown = sorted(set(skip or []) - set(COMPONENTS))
    if unknown:
        typer.echo(f"unknown component(s) {unknown}; known: {', '.join(COMPONENTS)}", err=True)
        raise typer.Exit(2)
    bound = timeout if timeout is not None else OperatorSettings().health_timeout_s
    results = run_probes(deployment_probes(), bound, frozenset(skip or []))
    if as_json:
        for result in results:
            typer.echo(orjson.dumps(result.as_dict()).decode())
    else:
        _print(results)
    if any(r.state == "down" for r in results):
        raise typer.Exit(1)


def _print(results: list[HealthResult]) -> None:
    """One line per component (never wrapped, so `grep` finds a whole line)."""
    console = Console(highlight=False, soft_wrap=True)
    width = max(len(r.name) for r in results)
    for r in results:
        took = f" ({r.elapsed_ms:.0f} ms)" if r.state in ("up", "down") else ""
        text = escape(f"{r.name:<{width}}  {r.target}  {r.detail}{took}")
        console.print(f"[{_STYLE[r.state]}]{r.state:<14}[/] {text}")
    down = [r.name for r in results if r.state == "down"]
    if down:
        console.print(f"[bold red]DOWN: {', '.join(down)}[/]")
    else:
        console.print("[green]all configured components are up[/]")
