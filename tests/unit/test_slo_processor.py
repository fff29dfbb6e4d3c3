"""SloProcessor without Kafka: decoded batches in, valid SloWindow records out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from schemas.catalog import SLO_WINDOW
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from stream.settings import SloSettings
from stream.slo_app import build_slo_processor, rules_from, targets_from
from stream.slo_processor import LINEAGE_HEADER, SloOutput, SloProcessor
from tests.records_factory import inference_event

CODEC = SingleObjectCodec()
MIN = 60_000


def _value(i: int, t: int, model: str = "m", **changes: Any) -> bytes:
    changes.setdefault("variant", "baseline")
    return CODEC.encode("InferenceEvent", inference_event(i, model, event_time=t, **changes))


def _run(
    processor: SloProcessor, values: list[bytes], partition: int = 0, batch: int = 700
) -> list[SloOutput]:
    out: list[SloOutput] = []
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        offsets = np.arange(start, start + len(chunk), dtype=np.int64)
        processor.process("events", partition, decode_inference_batch(chunk), offsets)
        out += processor.close_ready()
    return out


def test_window_assembly_counts_errors_separately_and_quantiles() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    latency = rng.lognormal(4.0, 1.0, n)
    outcome = rng.choice(["ok", "client_error", "server_error"], n, p=[0.9, 0.06, 0.04])
    variant = rng.choice(["baseline", "canary"], n, p=[0.8, 0.2])
    times = np.sort(rng.integers(0, 2 * MIN, n))
    values = [
        _value(i, int(t), latency_ms=float(lat), outcome=str(o), variant=str(v))
        for i, (t, lat, o, v) in enumerate(zip(times, latency, outcome, variant, strict=True))
    ]
    values.append(_value(n, 3 * MIN + 31_000))  # moves the watermark past both windows
    values.insert(100, b"junk")  # a bad record does not stop the window
    processor = SloProcessor(window_ms=MIN, lateness_ms=30_000)
    outputs = _run(processor, values)
    assert sorted(o.natural_key for o in outputs) == [
        ("m", "baseline", 0), ("m", "baseline", MIN), ("m", "canary", 0), ("m", "canary", MIN),
    ]  # fmt: skip
    for out in outputs:
        _, var, start = out.natural_key
        rows = (variant == var) & (times >= start) & (times < start + MIN)
        v = out.value
        assert v["request_count"] == rows.sum()
        assert v["client_error_count"] == (rows & (outcome == "client_error")).sum()
        assert v["server_error_count"] == (rows & (outcome == "server_error")).sum()
        assert v["error_rate"] == pytest.approx(v["server_error_count"] / v["request_count"])
        assert v["slow_request_count"] == (rows & (latency > 1000.0)).sum()
        for q, field in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms"),
                         (0.99, "latency_p99_ms")):  # fmt: skip
            exact = np.quantile(latency[rows], q, method="lower")
            assert v[field] == pytest.approx(exact, rel=0.01)
        assert v["model_version"] == "7" and v["window_end"] == start + MIN
        assert out.key == "m"
        CODEC.encode(SLO_WINDOW, v)  # valid against the schema
    first = next(o for o in outputs if o.natural_key == ("m", "baseline", 0))
    lineage = dict(first.headers)[LINEAGE_HEADER]
    assert isinstance(lineage, bytes) and lineage.startswith(b"events:0:0-")


def test_burn_rates_accumulate_over_closed_windows() -> None:
    # 10 windows at 1 % server errors (10x the 0.1 % budget), then one clean window
    values: list[bytes] = []
    for w in range(11):
        for i in range(100):
            bad = w < 10 and i == 0
            values.append(_value(w * 100 + i, w * MIN + i * 500,
                                 outcome="server_error" if bad else "ok"))  # fmt: skip
    values.append(_value(9999, 13 * MIN))
    outputs = _run(SloProcessor(window_ms=MIN, lateness_ms=0), values, batch=250)
    by_start = {o.value["window_start"]: o.value for o in outputs}
    assert by_start[9 * MIN]["burn_rates"]["5m"] == pytest.approx(10.0)
    assert by_start[9 * MIN]["burn_rates"]["1h"] == pytest.approx(10.0)
    assert by_start[10 * MIN]["burn_rates"]["5m"] == pytest.approx(8.0)  # 4 of 5 bad
    assert by_start[10 * MIN]["burn_rates"]["1h"] == pytest.approx(10 / 11 * 10.0)
    alerts = by_start[9 * MIN]["burn_alerts"]
    ticket = next(a for a in alerts if a["slo"] == "availability" and a["severity"] == "ticket")
    assert ticket["firing"] and ticket["threshold"] == pytest.approx(6.0)
    assert not any(a["firing"] for a in alerts if a["severity"] == "page")


def test_late_events_are_counted_in_the_next_window() -> None:
    values = [_value(i, i * 1000) for i in range(60)]  # window 0
    values += [_value(100 + i, MIN + i * 1000) for i in range(40)]  # window 1, wm 99 s
    values += [_value(200, 5_000), _value(201, 6_000)]  # window 0 closed: late
    values += [_value(300, 3 * MIN)]
    outputs = _run(SloProcessor(window_ms=MIN, lateness_ms=0), values, batch=30)
    by_start = {o.value["window_start"]: o.value for o in outputs}
    assert by_start[0]["request_count"] == 60 and by_start[0]["late_event_count"] == 0
    assert by_start[MIN]["request_count"] == 40 and by_start[MIN]["late_event_count"] == 2


def test_same_answer_however_models_are_spread_over_partitions() -> None:
    rng = np.random.default_rng(8)
    streams: dict[str, list[bytes]] = {}
    for model in ("a", "b", "c"):
        times = np.sort(rng.integers(0, 3 * MIN, 800))
        streams[model] = [
            _value(i, int(t), model, latency_ms=float(rng.exponential(50.0)),
                   outcome=str(rng.choice(["ok", "server_error"], p=[0.95, 0.05])))
            for i, t in enumerate(times)
        ] + [_value(999, 5 * MIN, model)]  # fmt: skip
    one = SloProcessor(window_ms=MIN, lateness_ms=10_000)
    interleaved = [v for trio in zip(*streams.values(), strict=True) for v in trio]
    together = _run(one, interleaved)
    two = SloProcessor(window_ms=MIN, lateness_ms=10_000)
    apart = _run(two, streams["a"] + streams["b"], partition=0, batch=333)
    apart += _run(two, streams["c"], partition=1, batch=1000)
    assert {o.natural_key: o.value for o in together} == {o.natural_key: o.value for o in apart}
    assert len(together) == 9


def test_settings_build_the_configured_rules_and_targets() -> None:
    settings = SloSettings(window_s=300, availability_target=0.99, period_days=7,
                           page_long_window_s=1800, page_short_window_s=300)  # fmt: skip
    processor = build_slo_processor(settings)
    assert processor.window_ms == 300_000
    assert targets_from(settings).period_s == 7 * 86_400
    page = rules_from(settings)[0]
    assert page.threshold(7 * 86_400) == pytest.approx(0.02 * 7 * 86_400 / 1800)


def test_history_reseeded_after_assignment_keeps_long_look_backs() -> None:
    # 19 windows at 1 % server errors, then clean ones; the processor restarts after
    # window 19 and re-reads the SloWindows it wrote: the 1h burn rate goes on as
    # without a restart (and would read 0 without the re-read).
    values: list[bytes] = []
    for w in range(30):
        values += [
            _value(
                w * 100 + i,
                w * MIN + i * 500,
                outcome="server_error" if w < 19 and i == 0 else "ok",
            )
            for i in range(100)
        ]
    values.append(_value(9999, 31 * MIN))
    whole = {o.natural_key: o.value for o in _run(SloProcessor(window_ms=MIN, lateness_ms=0),
                                                  values, batch=500)}  # fmt: skip
    first = _run(SloProcessor(window_ms=MIN, lateness_ms=0), values[:2000], batch=500)
    written = [o.value for o in first]
    reads: list[int] = []

    def source() -> list[dict[str, Any]]:
        reads.append(len(written))
        return written

    fresh = SloProcessor(window_ms=MIN, lateness_ms=0, history_source=source)
    checkpoint = None  # replay from the first still-open window: window 19
    fresh.assign("events", 0, checkpoint)
    rest = _run(fresh, values[1900:], batch=500)
    assert reads == [19]  # read once, before the first close after the assignment
    for out in rest:
        assert out.value == whole[out.natural_key], out.natural_key
    blind = SloProcessor(window_ms=MIN, lateness_ms=0)
    late = _run(blind, values[1900:], batch=500)
    assert whole[late[-1].natural_key]["burn_rates"]["1h"] == pytest.approx(19 / 3000 / 0.001)
    assert late[-1].value["burn_rates"]["1h"] == 0.0


def test_metrics_carry_the_closed_windows_values() -> None:
    model = "metrics-model"  # labels of its own: the registry is process-wide
    values = [
        _value(i, i * 100, model, latency_ms=10.0 + i,
               outcome="server_error" if i % 50 == 0 else "client_error" if i % 25 == 0 else "ok")
        for i in range(500)
    ] + [_value(999, 2 * MIN, model)]  # fmt: skip
    (out,) = _run(SloProcessor(window_ms=MIN, lateness_ms=0), values)
    v = out.value

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"model": model, "variant": "baseline", **labels})

    assert sample("driftline_slo_requests_total", outcome="server_error") == 10
    assert sample("driftline_slo_requests_total", outcome="client_error") == 10
    assert sample("driftline_slo_error_rate") == pytest.approx(v["error_rate"]) == 0.02
    assert sample("driftline_slo_client_error_rate") == pytest.approx(0.02)
    assert sample("driftline_slo_latency_seconds", quantile="0.95") == pytest.approx(
        v["latency_p95_ms"] / 1000
    )
    assert sample("driftline_slo_burn_rate", slo="availability", window="1h") == pytest.approx(
        v["burn_rates"]["1h"]
    )
    assert sample("driftline_slo_burn_alert_firing", slo="availability", severity="page") == 1.0
    assert sample("driftline_slo_burn_alert_firing", slo="latency", severity="page") == 0.0
    assert sample("driftline_slo_windows_closed_total") == 1
