"""A minimal faust-streaming worker, run as a subprocess by ``test_faust_streaming.py``.

At-least-once agent over one topic; each record adds one to a table entry and appends
``value:count`` to an output file, so the test can see which records were processed and
what state the table held at each. ``PROBE_TABLE_KEYS`` chooses how the table's keys are
declared: ``typed`` (``key_type=str``, what faust's docs show) or ``raw`` (bytes keys in a
table left at faust's default JSON key serializer, the shape of the issue's first probe).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import faust

TYPED = os.environ.get("PROBE_TABLE_KEYS", "typed") == "typed"
OUT = os.environ["PROBE_OUT"]

app = faust.App(
    os.environ["PROBE_APP_ID"],
    broker=f"kafka://{os.environ['PROBE_BROKER']}",
    store="memory://",
    # The settings the issue measured: a 5 s start instead of librdkafka-like defaults.
    broker_session_timeout=6.0,
    broker_heartbeat_interval=0.5,
    broker_rebalance_timeout=10,
    # Offsets are not committed on a timer (default 2.8 s), so a SIGKILL always leaves
    # every record of the run uncommitted and the replay the tests look at is certain.
    broker_commit_interval=3600.0,
    topic_partitions=1,
    web_enabled=False,
)
source = app.topic(
    os.environ["PROBE_TOPIC"],
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
counts: Any = (
    app.Table("counts", default=int, partitions=1, key_type=str, value_type=int)
    if TYPED
    else app.Table("counts", default=int, partitions=1)
)


@app.agent(source)
async def count(stream: Any) -> AsyncIterator[None]:
    """Count each record into the table and log ``value:count`` (flushed per record)."""
    async for key, value in stream.items():
        table_key = key.decode() if TYPED else key
        counts[table_key] += 1
        with open(OUT, "a") as handle:
            handle.write(f"{value.decode()}:{counts[table_key]}\n")
        yield None


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()
