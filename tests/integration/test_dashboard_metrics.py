"""Every PromQL query of the Grafana dashboards and the Prometheus rules names metrics the
running services really export.

The local stack (``LocalStack``, as ``make up`` runs it) starts every service that exports
metrics (serving, the drift, SLO and features processors, the shadow comparison job, the
alert evaluator, the retrain worker and the canary controller) on the test's broker, with
two-second windows. Real /predict traffic (good rows and bad requests) flows through
serving to Kafka until the processors have closed windows; then each service's /metrics
is scraped and every metric name a query selects (tests/promql.py reads them) must be one
of the scraped names.

The champion is also set as its own shadow, so the shadow comparison job pairs answers and
shows its gauges' samples (every ``driftline`` process declares every family, because the
CLI imports them all: only samples prove the job itself exports them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from driftline.settings import StackSettings
from driftline.stack import LocalStack
from schemas.breast_cancer import load_split
from schemas.rollout_state import RolloutStore
from schemas.settings import KafkaSettings, RedisSettings
from serving.settings import ServingSettings
from stream.alerting.settings import AlertingSettings
from stream.settings import DriftProcessorSettings, FeatureProcessorSettings, SloSettings
from tests.promql import BUILTIN, dashboard_expressions, metric_names, recorded_names
from tests.promql import rule_expressions as rules_of

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "infra/grafana/dashboards").glob("*.json"))
RULES = sorted((REPO / "infra/prometheus/rules").glob("*.yml"))
#: Services whose metrics the queries use.
SCRAPED = (
    "serving", "drift-processor", "slo-processor", "features", "alert-evaluator",
    "retrain-worker", "canary-controller", "shadow-comparison",
)  # fmt: skip
#: Samples each service must show once traffic went through: the windows really closed.
AFTER_TRAFFIC = {
    "serving": "serving_app_requests_total",
    "drift-processor": "driftline_drift_score",
    "slo-processor": "driftline_slo_burn_rate",
    "alert-evaluator": "driftline_alerting_records_total",
    "shadow-comparison": "driftline_shadow_agreement_rate",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "info": ("_info",),
}


def exported(text: str) -> tuple[set[str], set[str]]:
    """(every series name a scrape can hold, the names that had samples) of /metrics text.

    A labelled metric with no children yet is still declared (HELP and TYPE lines): its
    names count as exported.
    """
    names: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + s for s in suffixes)
        names.add(family.name)
        sampled.update(sample.name for sample in family.samples)
    return names | sampled, sampled


class ServicesStack(LocalStack):
    """The launcher's own start-up of the services that export metrics (not Alertmanager
    and Prometheus), in the launcher's phases: each is launched by the launcher's code and
    waited for side by side."""

    def start(self) -> None:
        try:
            self._start_broker()
            self._start_redis()
            self._await_launched()
            self._prepare()
            self._start_serving()
            self._start_drift_processor()
            self._start_slo_processor()
            self._start_features_processor()
            self._start_shadow_comparison()
            self._start_alert_evaluator()
            self._start_retrain_worker()
            self._start_canary_controller()
            self._await_launched()
        except BaseException:
            self.stop()
            raise


def scrape(urls: dict[str, str]) -> dict[str, str]:
    return {name: httpx.get(url, timeout=10).text for name, url in urls.items()}


def send_traffic(serving: str, rows: list[list[float]], seconds: float) -> int:
    """Batches of good rows and a few bad requests for ``seconds``; the answers' count."""
    answered = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=serving, timeout=10) as client:
        while time.monotonic() < deadline:
            batch = {"instances": [{"features": row} for row in rows[:50]]}
            assert client.post("/predict", json=batch).status_code == 200
            # 4xx: a wrong feature count, and an unknown model
            assert 400 <= client.post("/predict", json={"features": [1.0]}).status_code < 500
            bad = client.post("/predict", json={"model_name": "nope", "features": rows[0]})
            assert 400 <= bad.status_code < 500
            answered += 3
            time.sleep(0.2)
    return answered


@pytest.fixture
def stack(
    kafka_settings: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LocalStack:
    # Two-second windows that close as soon as a later event arrives (children inherit
    # the environment), so a few seconds of traffic close several of them.
    for var, value in {
        "DRIFTLINE_DRIFT_WINDOW_S": "2",
        "DRIFTLINE_DRIFT_SLIDING_S": "4",
        "DRIFTLINE_DRIFT_SLIDE_S": "2",
        "DRIFTLINE_DRIFT_ALLOWED_LATENESS_S": "0",
        "DRIFTLINE_DRIFT_DETECTOR_BLOCK_SIZE": "50",
        "DRIFTLINE_DRIFT_CALIBRATION_DRAWS": "20",
        "DRIFTLINE_SLO_WINDOW_S": "2",
        "DRIFTLINE_SLO_ALLOWED_LATENESS_S": "0",
        "DRIFTLINE_ALERTING_REPLAY_S": "0",
        # Random metrics ports: another stack on this machine may hold the defaults.
        "DRIFTLINE_RETRAIN_METRICS_PORT": "0",
        "DRIFTLINE_CANARY_METRICS_PORT": "0",
        "DRIFTLINE_SHADOW_METRICS_PORT": "0",
        "DRIFTLINE_SHADOW_WINDOW_S": "2",
        "DRIFTLINE_SHADOW_JOIN_WINDOW_S": "1",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("DRIFTLINE_REDIS_URL", raising=False)
    return ServicesStack(
        stack=StackSettings(data_dir=tmp_path, embedded_redis_port=0),
        kafka=kafka_settings,
        redis=RedisSettings(),
        serving=ServingSettings(port=0),
        drift=DriftProcessorSettings(metrics_port=0),
        slo=SloSettings(metrics_port=0),
        features=FeatureProcessorSettings(metrics_port=0),
        alerting=AlertingSettings(metrics_port=0),
    )  # fmt: skip


def test_every_dashboard_and_rule_query_names_an_exported_metric(stack: LocalStack) -> None:
    rows = [[float(v) for v in row] for row in load_split().x_validation[:50]]
    with stack:
        by_name = {ep.name: ep.address for ep in stack.endpoints}
        urls = {
            ep.name: f"http://{ep.metrics}/metrics" if ep.metrics else ep.address
            for ep in stack.endpoints
            if ep.name in SCRAPED
        }
        assert set(urls) == set(SCRAPED), urls
        urls["serving"] += "/metrics"
        # The champion as its own shadow: serving (polling Redis) copies each answered
        # request to it, so the shadow job has pairs to compare.
        client = redis.Redis.from_url(stack.redis.url.get_secret_value())
        try:
            RolloutStore(client).write_shadow(stack.serving.model_name, stack.champion_version)
        finally:
            client.close()
        # Traffic until every service shows the samples closed windows produce (bounded).
        deadline = time.monotonic() + 90
        missing: dict[str, str] = dict(AFTER_TRAFFIC)
        while missing and time.monotonic() < deadline:
            send_traffic(by_name["serving"], rows, seconds=3)
            texts = scrape(urls)
            missing = {
                name: sample
                for name, sample in AFTER_TRAFFIC.items()
                if sample not in exported(texts[name])[1]
            }
        assert not missing, f"no samples after traffic: {missing}"
        texts = scrape(urls)

    names: set[str] = set()
    for text in texts.values():
        names |= exported(text)[0]
    recorded = set().union(*(recorded_names(path) for path in RULES))
    queries = [(w, e) for path in DASHBOARDS for w, e in dashboard_expressions(path)]
    queries += [(f"{path.name}: {w}", e) for path in RULES for w, e in rules_of(path)]
    assert len(queries) > 40, len(queries)

    unknown: list[tuple[str, str]] = []
    for where, expr in queries:
        selected = metric_names(expr)
        for name in selected.exact:
            if name in names or name in BUILTIN or name in recorded:
                continue
            unknown.append((where, name))
        for pattern in selected.patterns:
            if not any(re.fullmatch(pattern, n) for n in names):
                unknown.append((where, f"__name__=~{pattern!r}"))
    assert not unknown, "queries name metrics no service exports:\n" + "\n".join(
        f"  {w}: {n}" for w, n in unknown
    )
    # Not vacuous: the dashboards' own names were found in the scrapes.
    used = {n for _, e in queries for n in metric_names(e).exact}
    assert {"serving_app_request_latency_seconds_bucket", "driftline_drift_score"} <= used & names
