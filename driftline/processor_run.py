"""Run a stream processor's loop in the foreground: what ``driftline drift|slo run`` share.

Logging to stderr, SIGINT/SIGTERM finish the current batch, commit and close, the
Prometheus ``/metrics`` server on the configured port, and a one-line summary at the end.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import typer
from prometheus_client import start_http_server

from stream.runtime.loop import LoopStats, ProcessorLoop


def configure_logging() -> None:
    """INFO lines with time and logger name (a processor runs as a service)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def run_until_signalled(
    loop: ProcessorLoop, *, name: str, group_id: str, metrics_port: int, metrics_host: str
) -> LoopStats:
    """Serve metrics, run ``loop`` until SIGINT/SIGTERM, print what it did."""

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    typer.echo(f"{name}: {loop.input_topic} -> {loop.output_topic} (group {group_id})")
    stats = loop.run()
    typer.echo(
        f"stopped: {stats.messages} events, {stats.outputs} {loop.record_type}s, "
        f"{stats.dead_letters} dead letters, {stats.commits} commits"
    )
    return stats
