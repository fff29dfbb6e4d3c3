"""``driftline validate``: check a running deployment end to end, one line per check.

Each check calls the deployment the way a user would and says what it saw. A check fails
on a wrong answer, an error or a timeout; it is *skipped* only when the thing it needs is
not configured (Prometheus), and then says which setting would enable it. An endpoint
answering a bare 404 (FastAPI's "Not Found": the route does not exist) is reported as
"not deployed", distinct from a 404 that names an unknown dataset or model.

The checks (in order): data pipeline trigger, online feature retrieval, training, inference,
drift detection, monitoring, security, performance.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from driftline.exceptions import ValidateError
from schemas.breast_cancer import load_split

Status = Literal["pass", "fail", "skip"]
#: Rows sent to ``/drift/detect`` (enough for the tests to say something).
DRIFT_ROWS = 60
#: ``/health`` calls of the performance check.
HEALTH_CALLS = 10
#: A ``view:feature`` reference inside an error message.
_FEATURE_REF = re.compile(r"\b[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*\b")
#: The entity key a 400 of ``/features/online`` says a row lacks ("row 0 has no 'user_id'").
_ENTITY_KEY = re.compile(r"has no '([\w.-]+)'")


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict and what it saw."""

    name: str
    status: Status
    detail: str


class Validator:
    """The checks against serving at ``url`` (and Prometheus, when given)."""

    def __init__(
        self,
        url: str,
        *,
        admin_token: str | None = None,
        prometheus_url: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.admin_token = admin_token
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self._model: dict[str, Any] | None = None

    def close(self) -> None:
        self.client.close()

    def checks(self) -> list[tuple[str, Callable[[], CheckResult]]]:
        """Every check, by name, in the order they run."""
        return [
            ("data pipeline trigger", self.pipeline_trigger),
            ("online feature retrieval", self.online_features),
            ("training", self.training),
            ("inference", self.inference),
            ("drift detection", self.drift_detection),
            ("monitoring", self.monitoring),
            ("security", self.security),
            ("performance", self.performance),
        ]

    def run(self, on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
        """Run every check (one failing never stops the others); return the verdicts."""
        results = []
        for name, check in self.checks():
            try:
                result = check()
            except httpx.HTTPError as exc:
                result = CheckResult(name, "fail", f"{type(exc).__name__}: {exc}")
            except ValidateError as exc:
                result = CheckResult(name, "fail", str(exc))
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    # --- helpers ----------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def _served(self) -> dict[str, Any]:
        """The first model ``GET /models`` lists (name, version, features)."""
        if self._model is None:
            answer = self.client.get(f"{self.url}/models")
            answer.raise_for_status()
            models = answer.json().get("models") or []
            if not models:
                raise ValidateError("GET /models lists no served model")
            self._model = dict(models[0])
        return self._model

    def _rows(self, count: int) -> list[dict[str, float]]:
        """``count`` held-out breast-cancer rows, named by the served model's features."""
        features = list(self._served()["features"])
        split = load_split()
        if sorted(features) != sorted(split.features):
            raise ValidateError(
                f"the served model's features are not the breast-cancer ones: {features[:5]}..."
            )
        named = [dict(zip(split.features, row.tolist(), strict=True)) for row in split.x_validation]
        return [named[i % len(named)] for i in range(count)]

    # --- checks -----------------------------------------------------------------

    def pipeline_trigger(self) -> CheckResult:
        """``POST /pipelines/trigger`` accepts a data_processing job: status and job id."""
        name = "data pipeline trigger"
        body = {"pipeline_type": "data_processing", "dataset": "reference"}
        answer = self.client.post(f"{self.url}/pipelines/trigger", json=body, headers=self._auth())
        if _not_deployed(answer):
            return CheckResult(name, "fail", "POST /pipelines/trigger answered 404: not deployed")
        data = _json(answer)
        if answer.is_success and data.get("status") == "success" and data.get("job_id"):
            return CheckResult(name, "pass", f"job {data['job_id']} accepted")
        return CheckResult(name, "fail", _said("POST /pipelines/trigger", answer))

    def online_features(self) -> CheckResult:
        """``POST /features/online`` answers per entity row; an unknown ref gets a 400 that
        lists the known ones, and the first known one is then fetched."""
        name = "online feature retrieval"
        path = f"{self.url}/features/online"
        rows = [{"entity_id": "driftline-validate"}]
        probe = {"entity_rows": rows, "feature_refs": ["driftline_validate:probe"]}
        answer = self.client.post(path, json=probe)
        if _not_deployed(answer):
            return CheckResult(name, "fail", "POST /features/online answered 404: not deployed")
        if answer.status_code != 400:
            return CheckResult(
                name, "fail", _said("POST /features/online (unknown ref, expected 400)", answer)
            )
        known = [r for r in _FEATURE_REF.findall(answer.text) if r != "driftline_validate:probe"]
        if not known:
            return CheckResult(
                name, "fail", f"400 lists no known feature refs: {answer.text[:200]}"
            )
        answer = self.client.post(path, json={"entity_rows": rows, "feature_refs": known[:1]})
        key = _ENTITY_KEY.search(str(_json(answer).get("message", "")))
        if answer.status_code == 400 and key:  # the view joins on another key: use it
            rows = [{key.group(1): "driftline-validate"}]
            answer = self.client.post(path, json={"entity_rows": rows, "feature_refs": known[:1]})
        if answer.status_code == 200:
            return CheckResult(name, "pass", f"{known[0]} retrieved ({len(known)} refs known)")
        return CheckResult(name, "fail", _said(f"POST /features/online ({known[0]})", answer))

    def training(self) -> CheckResult:
        """``POST /models/train`` (admin token) answers 202 with a run id."""
        name = "training"
        if not self.admin_token:
            return CheckResult(
                name, "fail", "no admin token: set DRIFTLINE_VALIDATE_ADMIN_TOKEN (or --token)"
            )
        body = {"model_name": self._served()["name"], "reason": "driftline validate"}
        answer = self.client.post(f"{self.url}/models/train", json=body, headers=self._auth())
        run_id = _json(answer).get("run_id")
        if answer.status_code == 202 and run_id:
            return CheckResult(name, "pass", f"MLflow run {run_id}")
        return CheckResult(name, "fail", _said("POST /models/train", answer))

    def inference(self) -> CheckResult:
        """``POST /predict`` with one held-out row answers a prediction."""
        name = "inference"
        model = self._served()
        body = {"model_name": model["name"], "features": self._rows(1)[0]}
        answer = self.client.post(f"{self.url}/predict", json=body)
        data = _json(answer)
        if answer.status_code == 200 and "prediction" in data:
            return CheckResult(
                name, "pass",
                f"{model['name']} v{data.get('model_version')} predicted {data['prediction']} "
                f"(p={data.get('probability', float('nan')):.3f})",
            )  # fmt: skip
        return CheckResult(name, "fail", _said("POST /predict", answer))

    def drift_detection(self) -> CheckResult:
        """``POST /drift/detect`` with held-out rows gives a drift score."""
        name = "drift detection"
        body = {"current_data": self._rows(DRIFT_ROWS)}
        answer = self.client.post(f"{self.url}/drift/detect", json=body)
        score = _json(answer).get("drift_score")
        if answer.status_code == 200 and isinstance(score, int | float):
            return CheckResult(name, "pass", f"drift_score {score:.3f} on {DRIFT_ROWS} rows")
        return CheckResult(name, "fail", _said("POST /drift/detect", answer))

    def monitoring(self) -> CheckResult:
        """Prometheus answers ``up`` (skipped when no Prometheus is configured)."""
        name = "monitoring"
        if self.prometheus_url is None:
            return CheckResult(
                name, "skip", "no Prometheus configured (DRIFTLINE_VALIDATE_PROMETHEUS_URL)"
            )
        answer = self.client.get(f"{self.prometheus_url}/api/v1/query", params={"query": "up"})
        data = _json(answer)
        if answer.status_code == 200 and data.get("status") == "success":
            series = data.get("data", {}).get("result", [])
            up = sum(1 for s in series if s.get("value", [None, "0"])[1] == "1")
            return CheckResult(name, "pass", f"query 'up': {up} of {len(series)} targets up")
        return CheckResult(name, "fail", _said("Prometheus GET /api/v1/query", answer))

    def security(self) -> CheckResult:
        """An admin call with an invalid token is refused with 401 or 403."""
        name = "security"
        bogus = {"Authorization": f"Bearer invalid-{secrets.token_hex(8)}"}
        answer = self.client.get(f"{self.url}/admin", headers=bogus)
        if answer.status_code in (401, 403):
            return CheckResult(name, "pass", f"invalid token refused with {answer.status_code}")
        return CheckResult(
            name, "fail", f"GET /admin with an invalid token answered {answer.status_code}"
        )

    def performance(self) -> CheckResult:
        """``HEALTH_CALLS`` calls of ``/health`` all answer 200."""
        name = "performance"
        codes, took = [], []
        for _ in range(HEALTH_CALLS):
            started = time.perf_counter()
            codes.append(self.client.get(f"{self.url}/health").status_code)
            took.append((time.perf_counter() - started) * 1000.0)
        ok = sum(1 for c in codes if c == 200)
        detail = f"{ok}/{HEALTH_CALLS} health calls 200, slowest {max(took):.1f} ms"
        return CheckResult(name, "pass" if ok == HEALTH_CALLS else "fail", detail)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _not_deployed(answer: httpx.Response) -> bool:
    """A 404 for the route itself (FastAPI's bare "Not Found"), not for a named thing."""
    return answer.status_code == 404 and _json(answer).get("message", "Not Found") == "Not Found"


def _said(call: str, answer: httpx.Response) -> str:
    data = _json(answer)
    message = data.get("message") or data.get("detail") or answer.text[:200]
    return f"{call} answered {answer.status_code}: {message}"
