"""/predict with publishing on and off: throughput and p50/p99, side by side in one run.

Two identical uvicorn servers (``python -m serving``, one worker each, same settings)
differ only in ``DRIFTLINE_SERVING_PUBLISH_EVENTS``; the "on" server publishes to an
embedded broker started here. The load generator (async httpx, loopback only) runs in
this process. Arms alternate (on, off, off, on, ...) so a noisy neighbour and the order hit both:

1. saturation: ``CONCURRENCY`` requests kept in flight for ``SATURATE_S`` seconds, per
   repeat; throughput = answered / elapsed;
2. half load: an open-loop schedule at half the slower arm's median saturated
   throughput for ``HALF_LOAD_S`` seconds; latency measured from each request's
   scheduled start (so a stall is not hidden by the generator waiting). p50 and p99 are
   computed per run and the median over runs is reported (one stall of a shared core
   otherwise decides a pooled p99), with the worst run's p99 beside it.

After each run the server is drained (``/ready`` reports no event in memory) before the
next starts, so a backlog left by saturating the broker does not land on the other arm.
The load generator shares the 2 cores with both servers and the broker, so saturated
throughput is partly the generator's limit: "server CPU per request" (the server
process's user+system time over the saturation runs, divided by requests answered) is
the measure of what publishing costs the server, independent of the generator.

Bounded: about 2 x (3 x 2.5 s + 3 x 3 s) of load, plus start-up (training ~5 s).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from driftline.embedded import broker_process
from driftline.ports import LOOPBACK, free_port
from retrain.training import train_and_register
from schemas.admin import ensure_topics, make_admin
from schemas.breast_cancer import load_split
from schemas.model_registry import ModelStore
from schemas.settings import KafkaSettings
from schemas.topics import INFERENCE_EVENTS

CONCURRENCY = 16
REPEATS = 3
SATURATE_S = 2.5
HALF_LOAD_S = 3.0
WARMUP_REQUESTS = 300
#: Both servers share core 1; the load generator and the broker get core 0, so the
#: broker's work (which production runs elsewhere) does not compete with serving.
SERVER_CORE, CLIENT_CORE = 1, 0


def _start_server(arm: str, data_dir: Path, kafka: KafkaSettings, store: ModelStore) -> tuple[
    subprocess.Popen[bytes], str
]:  # fmt: skip
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLINE_SERVING_HOST": LOOPBACK,
        "DRIFTLINE_SERVING_PORT": str(port),
        "DRIFTLINE_SERVING_PUBLISH_EVENTS": "true" if arm == "on" else "false",
        "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DRIFTLINE_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "DRIFTLINE_DATA_DIR": str(data_dir / arm),
        "MLFLOW_TRACKING_URI": store.tracking_uri,
    }
    log = (data_dir / f"serving-{arm}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    _pin(proc.pid, SERVER_CORE)
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"serving ({arm}) did not become ready; see {log.name}")


async def _saturate(client: httpx.AsyncClient, url: str, body: bytes, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            answer = await client.post(url, content=body)
            answer.raise_for_status()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def _open_loop(
    client: httpx.AsyncClient, url: str, body: bytes, rate: float, seconds: float
) -> list[float]:
    latencies: list[float] = []
    interval = 1.0 / rate
    start = time.perf_counter()

    async def one(scheduled: float) -> None:
        answer = await client.post(url, content=body)
        answer.raise_for_status()
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    n = int(rate * seconds)
    for i in range(n):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pin(pid: int, core: int) -> None:
    """Pin a process to one core when the machine has it (Linux, >= 2 cores)."""
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(pid, {core})


def _ordered(urls: dict[str, str], repeat: int) -> list[tuple[str, str]]:
    """Arms in turn, first one first on even repeats and last on odd ones (no order bias)."""
    items = list(urls.items())
    return items if repeat % 2 == 0 else items[::-1]


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def _drain(client: httpx.AsyncClient, url: str, timeout_s: float = 60.0) -> None:
    """Wait until a server has no events in memory (the broker caught up after saturation)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await client.get(f"{url}/ready")).json()["events_pending"] == 0:
            return
        await asyncio.sleep(0.1)


async def _run(
    urls: dict[str, str], pids: dict[str, int], body: bytes
) -> dict[str, dict[str, float]]:
    limits = httpx.Limits(max_connections=CONCURRENCY * 4, max_keepalive_connections=CONCURRENCY)
    headers = {"content-type": "application/json"}
    results: dict[str, dict[str, float]] = {arm: {} for arm in urls}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        for url in urls.values():  # warm-up: connections, first-call costs
            for _ in range(WARMUP_REQUESTS):
                (await client.post(f"{url}/predict", content=body)).raise_for_status()
        rates: dict[str, list[float]] = {arm: [] for arm in urls}
        cpu: dict[str, list[float]] = {arm: [] for arm in urls}
        for repeat in range(REPEATS):
            for arm, url in _ordered(urls, repeat):
                cpu_before = _cpu_s(pids[arm])
                rate = await _saturate(client, f"{url}/predict", body, SATURATE_S)
                cpu[arm].append((_cpu_s(pids[arm]) - cpu_before) / (rate * SATURATE_S))
                rates[arm].append(rate)
                await _drain(client, url)
        for arm in urls:
            results[arm]["saturated_rps"] = statistics.median(rates[arm])
            results[arm]["cpu_ms"] = statistics.median(cpu[arm]) * 1000
        half = 0.5 * min(results[arm]["saturated_rps"] for arm in urls)
        p50: dict[str, list[float]] = {arm: [] for arm in urls}
        p99: dict[str, list[float]] = {arm: [] for arm in urls}
        for repeat in range(REPEATS):
            for arm, url in _ordered(urls, repeat):
                latencies = await _open_loop(client, f"{url}/predict", body, half, HALF_LOAD_S)
                p50[arm].append(_pct(latencies, 0.50))
                p99[arm].append(_pct(latencies, 0.99))
                await _drain(client, url)
        for arm in urls:
            results[arm]["half_rps"] = half
            results[arm]["p50_ms"] = statistics.median(p50[arm]) * 1000
            results[arm]["p99_ms"] = statistics.median(p99[arm]) * 1000
            results[arm]["p99_worst_ms"] = max(p99[arm]) * 1000
    return results


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        data_dir = Path(tmp)
        broker = broker_process(free_port(), data_dir / "logs")
        broker.start()
        _pin(os.getpid(), CLIENT_CORE)
        if broker.pid is not None:
            _pin(broker.pid, CLIENT_CORE)
        servers: list[subprocess.Popen[bytes]] = []
        try:
            broker.wait_healthy(30)
            bootstrap = broker.argv[broker.argv.index("--listener-url") + 1].removeprefix("tcp://")
            kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix="bench.")
            ensure_topics(make_admin(kafka), [INFERENCE_EVENTS.prefixed(kafka.topic_prefix)])
            store = ModelStore.embedded(data_dir / "mlflow")
            train_and_register(store)
            urls, pids = {}, {}
            for arm in ("on", "off"):
                proc, url = _start_server(arm, data_dir, kafka, store)
                servers.append(proc)
                urls[arm], pids[arm] = url, proc.pid
            row = [float(v) for v in load_split().x_validation[0]]
            body = httpx.Request("POST", "/", json={"features": row}).content
            # This process imported MLflow and trained: a full collection of that heap
            # stalls the load generator ~0.1-0.3 s, which an open-loop schedule charges
            # to whichever arm is running. Freeze it and collect nothing while measuring.
            gc.collect()
            gc.freeze()
            gc.disable()
            try:
                results = asyncio.run(_run(urls, pids, body))
            finally:
                gc.enable()
            published = httpx.get(f"{urls['on']}/metrics").text
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(30)
            broker.stop()
    on, off = results["on"], results["off"]
    print(f"/predict, 1 uvicorn worker per arm, {CONCURRENCY} in flight at saturation,")
    print(f"medians of {REPEATS} x {SATURATE_S:.1f} s; half load {on['half_rps']:.0f} req/s "
          f"open loop, {REPEATS} x {HALF_LOAD_S:.1f} s per arm; servers on core {SERVER_CORE}, "
          f"load generator and broker on core {CLIENT_CORE}")  # fmt: skip
    print(f"{'measure':<28}{'publishing on':>16}{'publishing off':>16}{'on vs off':>14}")
    print(
        f"{'saturated throughput (rps)':<28}{on['saturated_rps']:>16.0f}"
        f"{off['saturated_rps']:>16.0f}{on['saturated_rps'] / off['saturated_rps']:>13.3f}x"
    )
    print(f"{'server CPU per request (ms)':<28}{on['cpu_ms']:>16.3f}{off['cpu_ms']:>16.3f}"
          f"{on['cpu_ms'] - off['cpu_ms']:>+13.3f} ms")  # fmt: skip
    for key, label in (("p50_ms", "p50 at half load (ms)"), ("p99_ms", "p99 at half load (ms)")):
        print(f"{label:<28}{on[key]:>16.2f}{off[key]:>16.2f}{on[key] - off[key]:>+13.2f} ms")
    print(f"{'worst run p99 (ms)':<28}{on['p99_worst_ms']:>16.2f}{off['p99_worst_ms']:>16.2f}")
    acked = [
        line.split()[-1]
        for line in published.splitlines()
        if line.startswith("serving_app_events_published_total")
    ]
    print(f"events acknowledged by the broker (on arm): {acked[0] if acked else '?'}")


if __name__ == "__main__":
    main()
