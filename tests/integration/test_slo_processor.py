"""The SLO processor on the embedded broker: SloWindows out, dead letters, scale-out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Message

from schemas.admin import ensure_topics, make_admin
from schemas.codec import SingleObjectCodec
from schemas.dead_letters import GROUP, REASON
from schemas.settings import KafkaSettings
from schemas.topics import DEAD_LETTERS, INFERENCE_EVENTS, SLO_WINDOWS
from stream.runtime.loop import ProcessorLoop
from stream.settings import SloSettings
from stream.slo_app import build_slo_loop
from tests.integration.conftest import assigned_consumer, read_all
from tests.integration.test_drift_processor_support import produce, read_scores, running
from tests.records_factory import inference_event

CODEC = SingleObjectCodec()
MIN = 60_000
T0 = 1_700_000_040_000  # a window boundary
OUTCOMES = np.array(["ok", "client_error", "server_error"])


def _loop(settings: KafkaSettings, group: str, state: Path) -> ProcessorLoop:
    return build_slo_loop(
        settings,
        SloSettings(
            group_id=group, state_dir=state, poll_timeout_s=0.2, metrics_port=0,
            commit_interval_s=0, allowed_lateness_s=0,
        ),
    )  # fmt: skip


def _wait_until_assigned(loops: list[ProcessorLoop], timeout_s: float = 60.0) -> None:
    """Until every loop's consumer holds partitions (bounds a broken run, decides nothing)."""
    deadline = time.monotonic() + timeout_s
    while not all(loop.consumer.assignment() for loop in loops):
        assert time.monotonic() < deadline, "the group did not settle"
        time.sleep(0.1)


def _traffic(
    model: str, windows: int, n: int, rng: np.random.Generator
) -> tuple[list[tuple[str, bytes]], dict[tuple[str, int], dict[str, Any]]]:
    """``n`` events per window over two variants, and what each SloWindow must say
    (computed here with numpy, independently of the processor)."""
    records: list[tuple[str, bytes]] = []
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for w in range(windows):
        start = T0 + w * MIN
        times = start + np.sort(rng.integers(0, MIN, n))
        latency = rng.lognormal(4.5, 1.0, n)
        outcome = rng.choice(OUTCOMES, n, p=[0.9, 0.06, 0.04])
        variant = rng.choice(["baseline", "canary"], n, p=[0.75, 0.25])
        for i in range(n):
            value = inference_event(
                w * n + i, model, event_time=int(times[i]), variant=str(variant[i]),
                latency_ms=float(latency[i]), outcome=str(outcome[i]),
            )  # fmt: skip
            records.append((model, CODEC.encode("InferenceEvent", value)))
        for var in ("baseline", "canary"):
            rows = variant == var
            expected[(var, start)] = {
                "request_count": int(rows.sum()),
                "client_error_count": int((outcome[rows] == "client_error").sum()),
                "server_error_count": int((outcome[rows] == "server_error").sum()),
                "latency_p95_ms": float(np.quantile(latency[rows], 0.95, method="lower")),
                "latency_p99_ms": float(np.quantile(latency[rows], 0.99, method="lower")),
            }
    closer = inference_event(10**6, model, event_time=T0 + (windows + 1) * MIN)
    records.append((model, CODEC.encode("InferenceEvent", closer)))
    return records, expected


def test_events_in_slo_windows_out_bad_records_to_the_dead_letters(
    kafka_settings: KafkaSettings, make_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    events_topic, windows_topic, dlq_topic = make_topics(
        INFERENCE_EVENTS, SLO_WINDOWS, DEAD_LETTERS
    )
    records, expected = _traffic("fraud", 3, 400, np.random.default_rng(21))
    records.insert(500, ("fraud", b"not avro"))  # mid-window: the window still closes
    records.insert(900, ("fraud", b"\xc3\x01garbage"))
    produce(kafka_settings, events_topic, records)

    loop = _loop(kafka_settings, "slo-a", tmp_path / "state")
    with running([loop]):
        got = read_scores(kafka_settings, windows_topic, len(expected))
    by_key = {(w["variant"], w["window_start"]): w for w in got}
    assert len(got) == len(by_key) == len(expected) == 6, "each window exactly once"
    for key, want in expected.items():
        window = by_key[key]
        for field in ("request_count", "client_error_count", "server_error_count"):
            assert window[field] == want[field], (key, field)
        assert window["latency_p95_ms"] == pytest.approx(want["latency_p95_ms"], rel=0.01)
        assert window["latency_p99_ms"] == pytest.approx(want["latency_p99_ms"], rel=0.01)
        assert window["error_rate"] == pytest.approx(
            want["server_error_count"] / want["request_count"]
        )
        assert window["model_name"] == "fraud" and window["window_end"] == key[1] + MIN
        # 4 % server errors burn the 0.1 % availability budget 40x: both rules fire
        assert window["burn_rates"]["5m"] > 14.4
        assert {(a["slo"], a["severity"]) for a in window["burn_alerts"] if a["firing"]} == {
            ("availability", "page"),
            ("availability", "ticket"),
        }
    dlq = assigned_consumer(kafka_settings, dlq_topic, 1, "dlq")
    dead = [m for m in read_all(dlq, 2) if isinstance(m, Message)]
    dlq.close()
    assert sorted(m.value() or b"" for m in dead) == [b"not avro", b"\xc3\x01garbage"]
    assert all(dict(m.headers() or [])[REASON] for m in dead)
    assert all(dict(m.headers() or [])[GROUP] == b"slo-a" for m in dead)
    assert loop.stats.dead_letters == 2


def test_one_and_two_instances_give_identical_slo_windows(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """Same input over the topic's partitions, one consumer vs a group of two."""
    rng = np.random.default_rng(5)
    records: list[tuple[str, bytes]] = []
    for model in ("m-0", "m-1", "m-2", "m-3"):
        part, _ = _traffic(model, 2, 150, rng)
        records += part
    results: list[dict[tuple[str, str, int], dict[str, Any]]] = []
    for run, instances in (("one", 1), ("two", 2)):
        settings = kafka_settings.model_copy(
            update={"topic_prefix": f"{kafka_settings.topic_prefix}{run}."}
        )
        specs = [s.prefixed(settings.topic_prefix) for s in (INFERENCE_EVENTS, SLO_WINDOWS,
                                                              DEAD_LETTERS)]  # fmt: skip
        ensure_topics(make_admin(settings), specs)
        loops = [_loop(settings, run, tmp_path / run / str(i)) for i in range(instances)]
        with running(loops):
            # Burn rates look back over a (model, variant)'s closed windows, held by the
            # instance that owns its partition: produce once the group is settled, so no
            # rebalance moves a model mid-stream (docs/slo.md, "Restarts").
            _wait_until_assigned(loops)
            produce(settings, specs[0].name, records)
            got = read_scores(settings, specs[1].name, 16)
        by_key = {(w["model_name"], w["variant"], w["window_start"]): w for w in got}
        assert len(got) == len(by_key) == 16, "each window exactly once"
        results.append(by_key)
        if instances == 2:
            assert all(loop.stats.messages for loop in loops), "work was spread"
    assert results[0] == results[1]


def test_restart_rebuilds_burn_rate_history_from_slo_windows(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """Stopped after 12 windows and restarted: the same SloWindows as one run, burn rates
    included (the new instance re-reads the look-back from slo.windows)."""
    records: list[tuple[str, bytes]] = []
    for w in range(20):
        for i in range(100):
            value = inference_event(
                w * 100 + i, "m", event_time=T0 + w * MIN + i * 500, variant="baseline",
                outcome="server_error" if w < 12 and i < 2 else "ok",
            )  # fmt: skip
            records.append(("m", CODEC.encode("InferenceEvent", value)))
    closer = inference_event(10**6, "m", event_time=T0 + 21 * MIN, variant="baseline")
    records.append(("m", CODEC.encode("InferenceEvent", closer)))
    first_part = 1300  # windows 0-12: closes 0-11
    results: list[dict[int, dict[str, Any]]] = []
    for run in ("whole", "restart"):
        settings = kafka_settings.model_copy(
            update={"topic_prefix": f"{kafka_settings.topic_prefix}{run}."}
        )
        specs = [s.prefixed(settings.topic_prefix) for s in (INFERENCE_EVENTS, SLO_WINDOWS,
                                                              DEAD_LETTERS)]  # fmt: skip
        ensure_topics(make_admin(settings), specs)
        if run == "whole":
            produce(settings, specs[0].name, records)
        else:
            produce(settings, specs[0].name, records[:first_part])
            with running([_loop(settings, run, tmp_path / run)]):
                assert len(read_scores(settings, specs[1].name, 12)) == 12
            produce(settings, specs[0].name, records[first_part:])
        loop = _loop(settings, run, tmp_path / run)
        with running([loop]):
            got = read_scores(settings, specs[1].name, 20)
        by_start = {w["window_start"]: w for w in got}
        assert len(got) == len(by_start) == 20, "each window exactly once"
        results.append(by_start)
    whole, restarted = results
    assert restarted == whole
    # the last window's hour still holds the 12 windows of 2 % errors: 24 of 2,000
    last = whole[T0 + 19 * MIN]
    assert last["burn_rates"]["1h"] == pytest.approx(24 / 2000 / 0.001)
    assert last["burn_rates"]["5m"] == 0.0
