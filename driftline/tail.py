"""``driftline topic tail``: read any Driftline topic as decoded JSON lines.

Records that do not decode are printed too (with the reason and their bytes in hex), on
the same stream, so tailing the dead-letter topic or a topic with bad producers shows
what is really there. Partitions are assigned directly (no consumer group, no commits):
tailing never disturbs a processor's offsets.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

import orjson
import typer
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from schemas.codec import Codec, make_codec
from schemas.exceptions import DecodeError
from schemas.kafka_config import consumer_config
from schemas.settings import KafkaSettings
from schemas.topics import ALL_TOPICS

topic_app = typer.Typer(help="Look at one Driftline topic.", no_args_is_help=True)


def resolve_topic(name: str, prefix: str) -> str:
    """A declared name (``inference.events``) gets the prefix; any other name is as given."""
    declared = {spec.name for spec in ALL_TOPICS}
    return f"{prefix}{name}" if name in declared else name


def quiet_librdkafka(name: str) -> logging.Logger:
    """A logger for librdkafka that keeps its connection retries out of the terminal.

    A command that reports an unreachable broker in one line of its own should not be
    preceded by librdkafka's ``%3|...|FAIL|`` line every 50 ms while it waits.
    """
    quiet = logging.getLogger(f"driftline.{name}.librdkafka")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    return quiet


def render(message: Message, codec: Codec) -> dict[str, Any]:
    """One message as a JSON-ready dict: where it came from and its decoded record."""
    key = message.key()
    out: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp_ms": message.timestamp()[1],
        "key": key.decode(errors="replace") if isinstance(key, bytes) else key,
    }
    headers = message.headers()
    if headers:
        pairs = headers.items() if isinstance(headers, dict) else headers
        out["headers"] = {
            k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in pairs
        }
    raw = message.value()
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    try:
        decoded = codec.decode(data)
        out["record_type"] = decoded.record_type
        out["value"] = decoded.value
    except DecodeError as exc:
        out["error"] = {"reason": exc.reason, "detail": str(exc)}
        out["value_hex"] = data.hex()
    return out


@topic_app.command("tail")
def tail(
    name: Annotated[str, typer.Argument(help="Topic, e.g. inference.events (prefix added).")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    partition: Annotated[
        int | None, typer.Option("--partition", "-p", help="Only this partition.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full envelope (topic, offset, key...).")
    ] = False,
    max_records: Annotated[
        int | None, typer.Option("--max-records", "-n", help="Stop after this many records.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without a new record."),
    ] = None,
) -> None:
    """Print each record of a topic as one JSON line, until Ctrl-C (or -n / --timeout).

    Without --json a line is the decoded record alone; with --json it is an envelope with
    topic, partition, offset, timestamp, key, headers and record type.
    """
    settings = KafkaSettings()
    topic = resolve_topic(name, settings.topic_prefix)
    codec = make_codec()
    config = consumer_config(settings, "driftline-tail", **{"enable.partition.eof": False})
    consumer = Consumer({**config, "logger": quiet_librdkafka("tail")})
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            typer.echo(f"cannot read {topic} at {settings.bootstrap_servers}: {exc}", err=True)
            raise typer.Exit(1) from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            typer.echo(f"topic {topic!r} does not exist", err=True)
            raise typer.Exit(1)
        partitions = sorted(found.partitions) if partition is None else [partition]
        if partition is not None and partition not in found.partitions:
            typer.echo(f"{topic} has partitions {sorted(found.partitions)}", err=True)
            raise typer.Exit(1)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        _print_until(consumer, codec, as_json, max_records, timeout)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _print_until(
    consumer: Consumer, codec: Codec, as_json: bool, max_records: int | None, idle_s: float | None
) -> None:
    printed = 0
    last = time.monotonic()
    while max_records is None or printed < max_records:
        message = consumer.poll(0.2)
        if message is None or message.error() is not None:
            if idle_s is not None and time.monotonic() - last > idle_s:
                return
            continue
        last = time.monotonic()
        record = render(message, codec)
        line = record if as_json else record.get("value", record)
        typer.echo(orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS).decode())
        printed += 1
