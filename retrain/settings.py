"""Typed settings of the retrain worker (``DRIFTLINE_RETRAIN_*``), read once from the environment.

Defaults run the embedded stack: a cooldown of ten minutes per model, a one-hour window
of recent labelled traffic, a validation gate with absolute floors and a small allowed
regression against the champion, and a 10 % canary for a candidate that passes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrainSettings(BaseSettings):
    """The retrain worker: admission (cooldown, de-dup, lock), training data, gate, rollout."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_RETRAIN_", frozen=True, extra="ignore")

    group_id: str = Field(
        default="driftline-retrain", description="Consumer group on retrain.requests."
    )
    cooldown_s: float = Field(
        default=600.0,
        ge=0,
        description="After a model's retrain starts, further non-urgent requests for it within "
        "this many seconds are suppressed (recorded, not trained).",
    )
    dedup_ttl_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="How long a handled idempotency key is remembered (the retrain.requests "
        "retention), so a replayed request is a no-op.",
    )
    lock_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="Lifetime of a model's training lock; renewed every third of it while "
        "training, so a dead worker's lock expires within this time.",
    )
    lock_wait_s: float = Field(
        default=120.0,
        ge=0,
        description="How long a request waits for another worker's lock on the same model "
        "before it is retried later (its offset is not committed).",
    )
    window_s: float = Field(
        default=3600.0,
        ge=0,
        description="Recent labelled traffic: InferenceEvents from the last this many seconds "
        "before the request, joined with their FeedbackEvents (0 = reference data only).",
    )
    max_recent_rows: int = Field(
        default=50_000, ge=0, description="Most recent labelled rows added to a training set."
    )
    read_idle_s: float = Field(
        default=2.0,
        gt=0,
        description="Reading the window stops when every partition reached its end, or after "
        "this many seconds without a record.",
    )
    recent_holdout_fraction: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Share of recent labelled rows held out (by request-id hash) to score the "
        "candidate and the champion on recent traffic.",
    )
    gate_min_accuracy: float = Field(
        default=0.90, ge=0, le=1, description="Absolute floor of held-out accuracy."
    )
    gate_min_roc_auc: float = Field(
        default=0.90, ge=0, le=1, description="Absolute floor of held-out ROC AUC."
    )
    gate_min_f1: float = Field(
        default=0.90, ge=0, le=1, description="Absolute floor of held-out F1."
    )
    gate_max_calibration_error: float = Field(
        default=0.10, ge=0, le=1, description="Largest held-out expected calibration error."
    )
    gate_max_regression: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How much lower than the champion's, on the same data, a candidate's "
        "accuracy, ROC AUC or F1 may be.",
    )
    canary_share: float = Field(
        default=0.10, ge=0, le=1, description="Canary share of a candidate that passes the gate."
    )
    rollout: Literal["canary", "shadow"] = Field(
        default="canary",
        description="What a candidate that passes the gate becomes: the canary (a share of the "
        "traffic, judged by the canary controller) or the shadow (a copy of the traffic, answers "
        "never returned; MLflow run tagged shadow=true).",
    )
    poll_timeout_s: float = Field(
        default=1.0, gt=0, description="Longest wait of one poll of retrain.requests."
    )
    metrics_port: int = Field(
        default=9107, ge=0, le=65535, description="Prometheus /metrics port of the retrain "
        "worker (0: not served).",
    )  # fmt: skip
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the worker's /metrics server binds."
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="A request failing this many times in a row with an error that is not a "
        "dependency being away goes to the dead-letter topic (processing_failed) and is "
        "committed past; Redis, MLflow, Kafka and lock failures are retried without limit.",
    )


class CanaryAnalysisSettings(BaseSettings):
    """The canary controller: steps, how many windows each needs, and the thresholds."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_CANARY_", frozen=True, extra="ignore")

    group_id: str = Field(
        default="driftline-canary", description="Consumer group on slo.windows and drift.scores."
    )
    steps: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 1.0],
        description="Canary shares, in order; passing the last one promotes (JSON list).",
    )
    windows: int = Field(default=3, ge=1, description="Passing window pairs each step needs.")
    min_requests: int = Field(
        default=20, ge=1, description="Canary requests a window needs to count as evidence."
    )
    max_error_rate_increase: float = Field(
        default=0.01, ge=0, le=1, description="How much the canary's error rate may exceed the "
        "baseline's in one window.",
    )  # fmt: skip
    max_latency_ratio: float = Field(
        default=1.5, ge=1, description="Largest canary p99 as a multiple of the baseline's."
    )
    latency_floor_ms: float = Field(
        default=5.0, ge=0, description="A canary p99 below this always passes the latency rule."
    )
    accuracy_source: Literal["realised", "estimated", "auto"] = Field(
        default="realised",
        description="Accuracy the accuracy rule compares (from drift.scores): realised (labels "
        "joined to the step's windows), estimated (mean confidence), or auto (realised once "
        "both variants have accuracy_min_labelled labels, estimated before).",
    )
    accuracy_max_decrease: float = Field(
        default=0.05, ge=0, le=1, description="How far the canary's accuracy over the step's "
        "windows may fall below the baseline's before the step fails.",
    )  # fmt: skip
    accuracy_min_labelled: int = Field(
        default=100, ge=1, description="Labelled predictions each variant needs over the "
        "step's windows before realised accuracy judges.",
    )  # fmt: skip
    accuracy_min_predictions: int = Field(
        default=100, ge=1, description="Predictions each variant needs over the step's "
        "windows before estimated accuracy judges.",
    )  # fmt: skip
    accuracy_required: bool = Field(
        default=False, description="A step whose SLO windows pass still waits until the "
        "accuracy rule has enough evidence (false: no DriftScores, SLO rules alone decide).",
    )  # fmt: skip
    poll_timeout_s: float = Field(default=0.5, gt=0, description="Longest wait of one poll.")
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Prometheus /metrics port of the canary "
        "controller (0: not served).",
    )  # fmt: skip
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the controller's /metrics server binds."
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="An SloWindow or DriftScore whose handling fails this many times in a row "
        "with an error that is not a dependency being away goes to the dead-letter topic "
        "(processing_failed); Redis, MLflow and Kafka failures are retried without limit.",
    )


class ShadowAnalysisSettings(BaseSettings):
    """The shadow analysis of the canary controller (``DRIFTLINE_CANARY_SHADOW_*``).

    It judges the ShadowComparisons of ``driftline shadow run``: a shadow passes when
    ``windows`` windows in a row (each with at least ``min_pairs`` paired requests) agree
    with the served answers at least ``min_agreement`` of the time and its p99 stays within
    ``max_latency_ratio`` of the champion's; it fails clearly when ``windows`` such windows
    in a row agree less than ``agreement_floor``. Acting on a verdict (promote, stop) is
    opt-in with ``auto`` (docs/decisions.md): agreement is not correctness.
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_CANARY_SHADOW_", frozen=True, extra="ignore"
    )

    auto: bool = Field(
        default=False,
        description="Act on verdicts: promote a passing shadow, stop one failing clearly "
        "(false: verdicts are only recorded; promote by command).",
    )
    min_agreement: float = Field(
        default=0.95, ge=0, le=1, description="Agreement rate a window needs to pass."
    )
    agreement_floor: float = Field(
        default=0.80, ge=0, le=1, description="A window agreeing less than this fails clearly; "
        "windows such windows in a row stop the shadow.",
    )  # fmt: skip
    windows: int = Field(
        default=3, ge=1, le=1000, description="Windows in a row a verdict (pass or fail) needs."
    )
    min_pairs: int = Field(
        default=50, ge=1, description="Paired requests a window needs to count as evidence."
    )
    max_latency_ratio: float = Field(
        default=1.5, ge=1, description="Largest shadow p99 as a multiple of the champion's."
    )
    latency_floor_ms: float = Field(
        default=5.0, ge=0, description="A shadow p99 below this always passes the latency rule."
    )

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> ShadowAnalysisSettings:
        if self.agreement_floor > self.min_agreement:
            raise ValueError(
                f"agreement_floor {self.agreement_floor} must not exceed min_agreement "
                f"{self.min_agreement}"
            )
        return self
