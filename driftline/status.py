"""``driftline status``: the latest DriftScore of every model, version and window kind.

Reads the tail of the drift-score topic (the last ``--lookback`` records of each
partition, assigned directly: no consumer group, no commits, so it never disturbs a
processor) and keeps, per (model, version, window kind), the record with the newest
window. Rollout state (champion, canary, shadow) comes from Redis when it answers;
without Redis the drift table is printed alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import redis
import typer
from confluent_kafka import Consumer, KafkaException, TopicPartition
from rich.console import Console
from rich.table import Table

from driftline.tail import quiet_librdkafka
from schemas.codec import Codec, make_codec
from schemas.exceptions import DecodeError
from schemas.kafka_config import consumer_config
from schemas.rollout_state import RolloutState, RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from schemas.shadow_analysis import ShadowAnalysis, ShadowAnalysisStore
from schemas.topics import DRIFT_SCORES

Key = tuple[str, str, str]  # model, version, window kind


@dataclass(frozen=True, slots=True)
class TailRead:
    """The newest DriftScore per (model, version, window kind), and what was skipped."""

    latest: dict[Key, dict[str, Any]]
    records: int
    undecodable: int


def read_latest(
    settings: KafkaSettings, topic: str, lookback: int, timeout_s: float = 10.0
) -> TailRead:
    """Read the last ``lookback`` records of every partition of ``topic``.

    :raises KafkaException: the topic does not exist or the broker does not answer.
    """
    codec = make_codec()
    config = consumer_config(settings, "driftline-status", **{"enable.partition.eof": False})
    consumer = Consumer({**config, "logger": quiet_librdkafka("status")})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise KafkaException(f"topic {topic!r} does not exist")
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for partition in sorted(found.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, max(low, high - lookback)))
        consumer.assign(starts)
        return _drain(consumer, codec, ends, time.monotonic() + timeout_s)
    finally:
        consumer.close()


def _drain(consumer: Consumer, codec: Codec, ends: dict[int, int], deadline: float) -> TailRead:
    latest: dict[Key, dict[str, Any]] = {}
    records = undecodable = 0
    remaining = dict(ends)
    while remaining and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=500, timeout=0.2):
            if message.error() is not None:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
            records += 1
            try:
                value = codec.decode(message.value() or b"").value
            except DecodeError:
                undecodable += 1
                continue
            key = (value["model_name"], value["model_version"], value["window_kind"])
            old = latest.get(key)
            if old is None or value["window_end"] >= old["window_end"]:
                latest[key] = value
    return TailRead(latest, records, undecodable)


def top_drifted(score: dict[str, Any], top: int) -> list[tuple[str, float]]:
    """The drifted features with the largest effect statistic, largest first."""
    drifted = [(f["feature"], float(f["statistic"])) for f in score["features"] if f["drifted"]]
    return sorted(drifted, key=lambda fs: -fs[1])[:top]


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summary(score: dict[str, Any], top: int) -> dict[str, Any]:
    return {
        "model": score["model_name"],
        "version": score["model_version"],
        "window_kind": score["window_kind"],
        "window_start": score["window_start"],
        "window_end": score["window_end"],
        "drift_score": score["drift_score"],
        "drifted": score["drifted"],
        "critical": score["critical"],
        "top_drifted_features": [
            {"feature": name, "statistic": stat} for name, stat in top_drifted(score, top)
        ],
        "event_count": score["event_count"],
        "late_event_count": score["late_event_count"],
        "expected_false_critical_per_week": score.get("expected_false_critical_per_week"),
    }


def _rollouts(models: list[str]) -> dict[str, RolloutState | None] | str:
    """Rollout state per model, or why Redis could not be read."""
    client = redis.Redis.from_url(
        RedisSettings().url.get_secret_value(), socket_timeout=1, socket_connect_timeout=1
    )
    try:
        store = RolloutStore(client)
        return {model: store.read(model) for model in models}
    except redis.RedisError as exc:
        return f"rollout state not read (Redis: {type(exc).__name__})"
    finally:
        client.close()


def _rollout_text(state: RolloutState | None) -> str:
    if state is None:
        return "no rollout state"
    parts = [f"champion {state.champion_version or '(registry alias)'}"]
    if state.active:
        parts.append(f"canary {state.canary_version} at {state.canary_share:.0%}")
    if state.shadow_version:
        parts.append(f"shadow {state.shadow_version}")
    return ", ".join(parts)


def status(
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    lookback: Annotated[
        int, typer.Option(min=1, help="Records read from the end of each partition.")
    ] = 2000,
    top: Annotated[int, typer.Option(min=0, help="Drifted features listed per window.")] = 3,
    rollout: Annotated[
        bool, typer.Option("--rollout/--no-rollout", help="Show rollout state from Redis.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 10.0,
) -> None:
    """Latest drift per model, version and window kind: score, critical, top features."""
    settings = KafkaSettings()
    if bootstrap is not None:
        settings = settings.model_copy(update={"bootstrap_servers": bootstrap})
    topic = DRIFT_SCORES.prefixed(settings.topic_prefix).name
    try:
        read = read_latest(settings, topic, lookback, timeout)
    except KafkaException as exc:
        typer.echo(f"cannot read {topic} at {settings.bootstrap_servers}: {exc}", err=True)
        raise typer.Exit(1) from None
    rows = [
        _summary(score, top)
        for key, score in sorted(read.latest.items())
        if model is None or key[0] == model
    ]
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        return
    console = Console()
    if not rows:
        console.print(f"no DriftScores in the last {lookback} records of each partition of {topic}")
        return
    _print_table(console, rows, topic)
    if read.undecodable:
        console.print(f"{read.undecodable} of {read.records} records did not decode (skipped)")
    if rollout:
        _print_rollouts(console, sorted({row["model"] for row in rows}))


def _print_table(console: Console, rows: list[dict[str, Any]], topic: str) -> None:
    table = Table(title=f"Latest drift ({topic})")
    for column in ("model", "version", "window", "window (UTC)", "drift score", "critical",
                   "top drifted features", "events", "late", "false crit./week"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        features = ", ".join(
            f"{f['feature']} ({f['statistic']:.2f})" for f in row["top_drifted_features"]
        )
        weekly = row["expected_false_critical_per_week"]
        table.add_row(
            row["model"],
            row["version"],
            row["window_kind"],
            f"{_when(row['window_start'])} - {_when(row['window_end'])[11:]}",
            f"{row['drift_score']:.3f}" + (" (drifted)" if row["drifted"] else ""),
            "[bold red]CRITICAL[/]" if row["critical"] else "no",
            features or "-",
            str(row["event_count"]),
            str(row["late_event_count"]),
            "-" if weekly is None else f"{weekly:.3g}",
        )
    console.print(table)


def _print_rollouts(console: Console, models: list[str]) -> None:
    states = _rollouts(models)
    if isinstance(states, str):
        console.print(states)
        return
    verdicts = _shadow_verdicts(models)
    for name in models:
        text = _rollout_text(states[name])
        state, analysis = states[name], verdicts.get(name)
        shadow = state.shadow_version if state is not None else None
        if analysis is not None and shadow is not None and analysis.shadow_version == shadow:
            text += f" (shadow analysis: {analysis.verdict}: {analysis.reason})"
        console.print(f"rollout {name}: {text}", highlight=False)


def _shadow_verdicts(models: list[str]) -> dict[str, ShadowAnalysis]:
    """The canary controller's latest shadow analysis per model (none when Redis fails)."""
    client = redis.Redis.from_url(
        RedisSettings().url.get_secret_value(), socket_timeout=1, socket_connect_timeout=1
    )
    try:
        store = ShadowAnalysisStore(client)
        found = {model: store.read(model) for model in models}
        return {model: analysis for model, analysis in found.items() if analysis is not None}
    except redis.RedisError:
        return {}
    finally:
        client.close()
