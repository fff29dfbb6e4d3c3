"""Alert evaluator cost, and what an unreachable Alertmanager costs the processing loop.

1. Evaluation vs decode: 40,000 records (20,000 DriftScores and 20,000 SloWindows, 50
   models, one-minute windows, scores that breach, hover and clear so every rule moves)
   are decoded with the codec alone ("decode"), then decoded and evaluated with every
   shipped rule, building the Alertmanager notice, Alert record and RetrainRequest of
   each transition ("evaluate"). 5 alternating repeats, medians.
2. ``AlertmanagerSender.submit`` while its thread posts to an Alertmanager that answers
   at once (httpx mock transport) vs to a closed loopback port (connection refused,
   backoff): the loop-side cost per alert state, 20,000 submits, 5 repeats, medians.
No broker: this is the pure path the Kafka loop runs per record.
"""

from __future__ import annotations

import statistics
import time

import httpx

from driftline.ports import free_port
from schemas.catalog import DRIFT_SCORE, SLO_WINDOW
from schemas.codec import make_codec
from stream.alerting.alerts import Notice, notice, retrain_request
from stream.alerting.evaluator import Evaluator, Observation
from stream.alerting.rules import load_rules
from stream.alerting.sender import AlertmanagerSender, Backoff

MODELS = 50
WINDOWS = 400
REPEATS = 5
SUBMITS = 20_000
T0 = 1_764_000_000_000
CODEC = make_codec()


def _score(i: int) -> float:
    """Breach for 20 windows, hover for 10, clear for 10: every state is visited."""
    return (0.9, 0.7, 0.1)[min(2, (i % 40) // 10 - 1)] if i % 40 >= 10 else 0.9


def _records() -> list[bytes]:
    out: list[bytes] = []
    for i in range(WINDOWS):
        for m in range(MODELS):
            start, end = T0 + i * 60_000, T0 + (i + 1) * 60_000
            out.append(CODEC.encode(DRIFT_SCORE, {
                "model_name": f"m{m}", "model_version": "1", "window_start": start,
                "window_end": end, "event_count": 500, "drift_score": _score(i),
                "drifted": True, "reference_id": "r", "method": "wasserstein",
                "features": [{"feature": f"f{k}", "statistic": 0.3, "p_value": 0.01,
                              "threshold": 0.1, "drifted": True, "sample_size": 500}
                             for k in range(10)],
            }))  # fmt: skip
            out.append(CODEC.encode(SLO_WINDOW, {
                "model_name": f"m{m}", "model_version": "1", "variant": "baseline",
                "window_start": start, "window_end": end, "request_count": 1000,
                "client_error_count": 0, "server_error_count": 0,
                "error_rate": 0.1 if i % 40 < 20 else 0.0, "latency_p50_ms": 5.0,
                "latency_p95_ms": 1500.0 if i % 40 < 20 else 50.0, "latency_p99_ms": 20.0,
                "burn_rates": {"5m": 20.0, "1h": 20.0, "30m": 1.0, "6h": 1.0},
            }))  # fmt: skip
    return out


def _decode(values: list[bytes]) -> int:
    return sum(1 for v in values if CODEC.decode(v).value)


def _evaluate(values: list[bytes]) -> int:
    config = load_rules()
    evaluator = Evaluator(config)
    outputs = 0
    for value in values:
        decoded = CODEC.decode(value)
        obs = (
            Observation.from_drift_score(decoded.value)
            if decoded.record_type == DRIFT_SCORE
            else Observation.from_slo_window(decoded.value)
        )
        for t in evaluator.observe(obs):
            n = notice(t, config)
            n.to_record()
            if t.state == "firing" and t.rule.retrain:
                retrain_request(t, T0)
            outputs += 1
    return outputs


def _submit_cost(client: httpx.Client | None, url: str) -> float:
    """Seconds per ``submit`` with the sender thread running against ``url``."""
    sender = AlertmanagerSender(url, client=client, backoff=Backoff(max_s=1.0)).start()
    labels = {"alertname": "A", "severity": "high", "model": "m", "variant": "baseline"}
    notices = [
        Notice(f"fp{i % 500}", {**labels, "n": str(i % 500)}, {}, "firing", T0, None)
        for i in range(SUBMITS)
    ]
    started = time.perf_counter()
    for n in notices:
        sender.submit(n)
    took = time.perf_counter() - started
    sender.close(timeout_s=0.5)
    return took / SUBMITS


def main() -> None:
    values = _records()
    decode_s: list[float] = []
    evaluate_s: list[float] = []
    transitions = 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        _decode(values)
        decode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        transitions = _evaluate(values)
        evaluate_s.append(time.perf_counter() - started)
    d, e = statistics.median(decode_s), statistics.median(evaluate_s)
    print(f"{len(values):,} records, {transitions:,} transitions per pass, medians of {REPEATS}")
    print(f"{'path':<10} {'s':>8} {'records/s':>12} {'vs decode':>10}")
    print(f"{'decode':<10} {d:>8.3f} {len(values) / d:>12,.0f} {1.0:>10.2f}")
    print(f"{'evaluate':<10} {e:>8.3f} {len(values) / e:>12,.0f} {e / d:>10.2f}")

    def answering(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    up = [
        _submit_cost(httpx.Client(transport=httpx.MockTransport(answering)), "http://am")
        for _ in range(REPEATS)
    ]
    closed = f"http://127.0.0.1:{free_port()}"
    down = [_submit_cost(None, closed) for _ in range(REPEATS)]
    u, w = statistics.median(up), statistics.median(down)
    print(f"\nsubmit() cost, {SUBMITS:,} alert states (500 identities), medians of {REPEATS}")
    print(f"{'Alertmanager':<14} {'µs/submit':>10} {'vs up':>8}")
    print(f"{'answering':<14} {u * 1e6:>10.2f} {1.0:>8.2f}")
    print(f"{'unreachable':<14} {w * 1e6:>10.2f} {w / u:>8.2f}")


if __name__ == "__main__":
    main()
