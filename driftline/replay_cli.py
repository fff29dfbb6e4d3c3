"""``driftline replay``: a file or a built-in scenario through ``/predict`` or onto the
inference topic, with a progress bar and the final counts (sent, accepted, failed).

Exit code 0 when every sent event was accepted, 1 when any failed, 2 for unusable input
(a file that cannot be read, wrong columns, an unknown scenario): the message names the
file and the columns.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from driftline.exceptions import ReplayInputError
from driftline.replay import (
    HttpSender,
    OnResult,
    ReplayBounds,
    ReplayCounts,
    ReplayEvent,
    TopicSender,
    file_events,
    known_features,
    scenario_events,
)
from driftline.scenarios import SCENARIOS
from schemas.exceptions import DriftlineError
from schemas.sdk import DriftlineProducer
from serving.settings import ServingSettings

console = Console()
err_console = Console(stderr=True)

#: Events of a scenario when neither --count nor --rate with --duration says how many.
DEFAULT_SCENARIO_COUNT = 1000
#: Exit code of unusable input (2, as for a usage error), distinct from failed sends (1).
BAD_INPUT = 2


class Target(StrEnum):
    http = "http"
    topic = "topic"


FileArg = Annotated[
    Path | None,
    typer.Argument(help="CSV or Parquet file: a row per event, a column per feature.",
                   dir_okay=False),
]  # fmt: skip
ScenarioOpt = Annotated[
    str | None, typer.Option(help=f"Built-in scenario instead of a file: {', '.join(SCENARIOS)}.")
]
ToOpt = Annotated[
    Target, typer.Option(help="http: POST /predict; topic: the SDK onto the inference topic.")
]
UrlOpt = Annotated[
    str | None, typer.Option(help="Serving's base URL (default: DRIFTLINE_SERVING_HOST/PORT).")
]
RateOpt = Annotated[
    float | None, typer.Option(min=0.001, help="Events/s (default: as fast as possible).")
]
CountOpt = Annotated[int | None, typer.Option(min=1, help="Send at most this many events.")]
DurationOpt = Annotated[float | None, typer.Option(min=0.001, help="Stop after this many s.")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="Requests in flight (http).")]
ModelOpt = Annotated[str | None, typer.Option(help="Model name (default: the served one).")]
VersionOpt = Annotated[str, typer.Option(help="Model version of the events (topic).")]
OnsetOpt = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Where a scenario's change starts (share).")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of a scenario's draws.")]
FeedbackOpt = Annotated[
    bool,
    typer.Option(help="Also send each label (column 'target', a scenario's truth) as feedback."),
]


def replay(
    file: FileArg = None,
    scenario: ScenarioOpt = None,
    to: ToOpt = Target.http,
    url: UrlOpt = None,
    rate: RateOpt = None,
    count: CountOpt = None,
    duration: DurationOpt = None,
    concurrency: ConcurrencyOpt = 8,
    model: ModelOpt = None,
    model_version: VersionOpt = "1",
    onset: OnsetOpt = 0.5,
    seed: SeedOpt = 0,
    feedback: FeedbackOpt = False,
) -> None:
    """Replay a file or a scenario through /predict or onto the inference topic."""
    model_name = model or ServingSettings().model_name
    try:
        events = _events(file, scenario, to, model_name, count, rate, duration, onset, seed,
                         feedback)  # fmt: skip
    except ReplayInputError as exc:
        err_console.print(f"[red]cannot replay:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None
    if count is not None:
        events = events[:count]
    bounds = ReplayBounds(rate=rate, duration_s=duration)
    counts = _send(events, bounds, to, url, model_name, model_version, concurrency, feedback)
    console.print(
        f"sent {counts.sent}, accepted {counts.accepted}, failed {counts.failed}",
        highlight=False,
    )
    for reason in counts.failures:
        err_console.print(f"  failed: {reason}", markup=False, highlight=False)
    if counts.failed or counts.sent == 0:
        raise typer.Exit(1)


def _events(
    file: Path | None,
    scenario: str | None,
    to: Target,
    model_name: str,
    count: int | None,
    rate: float | None,
    duration: float | None,
    onset: float,
    seed: int,
    feedback: bool,
) -> list[ReplayEvent]:
    if (file is None) == (scenario is None):
        raise ReplayInputError("give either a FILE or --scenario NAME (not both)")
    if file is not None:
        if not file.is_file():
            raise ReplayInputError(f"{file}: no such file")
        return file_events(file, known_features(model_name))
    assert scenario is not None  # noqa: S101 - checked above
    if scenario == "prediction-only" and to is Target.http:
        raise ReplayInputError(
            "scenario 'prediction-only' changes the model's answers, which /predict computes "
            "itself: use --to topic"
        )
    if scenario == "concept" and not feedback:
        raise ReplayInputError(
            "scenario 'concept' changes only the labels: add --feedback to send them"
        )
    if count is None:
        count = round(rate * duration) if rate and duration else DEFAULT_SCENARIO_COUNT
    return scenario_events(scenario, count, onset, seed, with_predictions=to is Target.topic)


def _send(
    events: list[ReplayEvent],
    bounds: ReplayBounds,
    to: Target,
    url: str | None,
    model_name: str,
    model_version: str,
    concurrency: int,
    feedback: bool,
) -> ReplayCounts:
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("accepted {task.fields[accepted]}, failed {task.fields[failed]}"),
        TimeElapsedColumn(),
    )  # fmt: skip
    target = _target_name(to, url)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"replay to {target}", total=len(events), accepted=0, failed=0)

        def on_result(counts: ReplayCounts) -> None:
            progress.update(task, completed=counts.accepted + counts.failed,
                            accepted=counts.accepted, failed=counts.failed)  # fmt: skip

        try:
            return _run(events, bounds, to, url, model_name, model_version, concurrency,
                        feedback, on_result)  # fmt: skip
        except KeyboardInterrupt:
            bounds.stop.set()
            raise


def _run(
    events: list[ReplayEvent],
    bounds: ReplayBounds,
    to: Target,
    url: str | None,
    model_name: str,
    model_version: str,
    concurrency: int,
    feedback: bool,
    on_result: OnResult,
) -> ReplayCounts:
    producer = DriftlineProducer("driftline-replay") if to is Target.topic or feedback else None
    try:
        if to is Target.topic:
            assert producer is not None  # noqa: S101 - made above
            sender = TopicSender(producer, model_name, model_version, feedback)
            return sender.run(events, bounds, on_result)
        http = HttpSender(_target_name(to, url), model_name, concurrency, feedback=producer)
        return http.run(events, bounds, on_result)
    finally:
        if producer is not None:
            with contextlib.suppress(DriftlineError):
                producer.close(30.0)


def _target_name(to: Target, url: str | None) -> str:
    if to is Target.topic:
        return "the inference topic"
    if url:
        return url
    settings = ServingSettings()
    return f"http://{settings.host}:{settings.port}"
