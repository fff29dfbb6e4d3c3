"""Typed settings of the stream component (env prefix ``DRIFTLINE_``).

:class:`DriftStatsSettings` holds the defaults of the drift statistics: bins, the
decision rule (significance level, effect-size floors, score thresholds), calibration
and hysteresis. The library itself takes plain parameters (it is pure); these settings
only supply the defaults, e.g. ``DecisionRule.from_settings(DriftStatsSettings())``.
``docs/drift.md`` explains each value and how to tune it per model.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.runtime.window_plan import WindowPlan, WindowSizes


class DriftStatsSettings(BaseSettings):
    """Defaults of the drift statistics, the decision rule and the alert hysteresis."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_DRIFT_", frozen=True, extra="ignore", populate_by_name=True
    )

    reference_path: Path | None = Field(
        default=None,
        # The (and serving's) shared name DRIFT_REFERENCE_PATH works here too.
        validation_alias=AliasChoices("DRIFTLINE_DRIFT_REFERENCE_PATH", "DRIFT_REFERENCE_PATH"),
        description="Reference profile JSON (or CSV of training data) to compare against "
        "when no profile comes with the model version; DRIFT_REFERENCE_PATH also works.",
    )
    bins: int = Field(
        default=20,
        ge=2,
        le=1000,
        description="Quantile bins per numeric feature in a new reference profile.",
    )
    alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="Benjamini-Hochberg false-discovery level across features (before "
        "calibration; calibration may only lower it).",
    )
    effect_floor_numeric: float = Field(
        default=0.1,
        ge=0.0,
        description="Smallest normalised Wasserstein distance (in reference robust standard "
        "deviations) that counts as drift for a numeric feature.",
    )
    effect_floor_categorical: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Smallest Jensen-Shannon distance (base 2) that counts as drift for a "
        "categorical feature or the predicted class.",
    )
    score_threshold: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="A window is flagged when its drift_score is above this (0: any feature).",
    )
    critical_score: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="drift_score at or above which a window counts towards a critical alert.",
    )
    target_false_alarm_rate: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="Share of no-drift windows calibration allows to be flagged.",
    )
    calibration_draws: int = Field(
        default=400,
        ge=20,
        description="Bootstrap windows drawn from the reference to calibrate a model.",
    )
    hysteresis_k: int = Field(
        default=3, ge=1, description="Raise an alert after k flagged windows of the last n."
    )
    hysteresis_n: int = Field(default=5, ge=1, description="Length of the raise look-back.")
    hysteresis_m: int = Field(
        default=3, ge=1, description="Clear an alert after m consecutive clean windows."
    )


class ModelWindows(BaseModel):
    """One model's window sizes in seconds (``DRIFTLINE_DRIFT_WINDOWS``); an omitted
    size is the global one (``window_s``, ``sliding_s``, ``slide_s``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tumbling: float | None = Field(default=None, gt=0, description="Tumbling window, s.")
    sliding: float | None = Field(default=None, ge=0, description="Sliding window, s (0: none).")
    slide: float | None = Field(default=None, gt=0, description="Sliding window advance, s.")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class ProcessorLoopSettings(BaseSettings):
    """How a windowed stream processor consumes, commits and serves metrics.

    Shared by the drift and SLO processors (both driven by ``stream.runtime.ProcessorLoop``);
    each subclass sets its own ``DRIFTLINE_*`` prefix, consumer group and metrics port.
    """

    batch_size: int = Field(
        default=5000, ge=1, description="Messages per consume() call (one vectorised batch)."
    )
    poll_timeout_s: float = Field(
        default=0.5, gt=0, description="Longest wait of one consume() call, seconds."
    )
    commit_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="Commit at least this often when no window closed (0: every batch).",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the /metrics server binds; loopback unless Prometheus scrapes "
        "from elsewhere (e.g. 0.0.0.0 in a container).",
    )


class DriftProcessorSettings(ProcessorLoopSettings):
    """How the drift stream processor runs (``driftline drift run``).

    Shares the ``DRIFTLINE_DRIFT_`` prefix with :class:`DriftStatsSettings` (the reference
    profile location, ``DRIFTLINE_DRIFT_REFERENCE_PATH``, lives there); the names do not
    overlap. ``docs/drift.md`` ("Running the drift processor") explains each.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_DRIFT_", frozen=True, extra="ignore")

    window_s: float = Field(
        default=60.0, gt=0, description="Tumbling event-time window length, seconds."
    )
    sliding_s: float = Field(
        default=900.0,
        ge=0,
        description="Sliding window length, seconds: a whole number of tumbling windows, "
        "merged from them (0: no sliding windows).",
    )
    slide_s: float = Field(
        default=60.0,
        gt=0,
        description="How far a sliding window advances, seconds (a whole number of "
        "tumbling windows, at most sliding_s).",
    )
    windows: dict[str, ModelWindows] = Field(
        default_factory=dict,
        description='Per-model sizes as JSON, e.g. {"fraud": {"tumbling": 30, "sliding": '
        '600, "slide": 60}} (seconds; omitted sizes are the global ones).',
    )
    allowed_lateness_s: float = Field(
        default=30.0,
        ge=0,
        description="Watermark = newest event time of the model minus this; a window "
        "closes when the watermark passes its end.",
    )
    group_id: str = Field(
        default="driftline-drift", min_length=1, description="Kafka consumer group."
    )
    metrics_port: int = Field(
        default=9103, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    detector_block_size: int = Field(
        default=500,
        ge=0,
        description="Events per update of the online change-point detectors "
        "(Page-Hinkley on standardised block means); 0 turns them off.",
    )
    feedback_join: bool = Field(
        default=True,
        description="Also read inference.feedback (every partition) and join FeedbackEvents "
        "to the predictions this instance counts, by request id: realised accuracy per "
        "variant and the ADWIN error detector.",
    )
    join_window_s: float = Field(
        default=900.0,
        ge=0,
        description="How long (event time, against the model's watermark) a prediction "
        "waits for its label, and a label that came first waits for its prediction.",
    )
    join_max_predictions: int = Field(
        default=200_000,
        ge=1,
        description="Most predictions held for the join at once (oldest dropped first, "
        "counted); about 250 bytes each with UUID request ids (measured).",
    )
    join_max_feedback: int = Field(
        default=50_000,
        ge=1,
        description="Most labels held while waiting for their prediction (oldest dropped "
        "first, counted).",
    )
    feedback_lookback_s: float = Field(
        default=1800.0,
        ge=0,
        description="On start, read inference.feedback from this far back (broker "
        "timestamps), so the replayed open windows get their labels again.",
    )
    state_dir: Path | None = Field(
        default=Path("data/drift-state"),
        description="Local copy of each partition's checkpoint, used when the broker "
        "drops offset-commit metadata (the embedded broker does); empty: none.",
    )
    partitioned: bool = Field(
        default=False,
        description="One model's events are spread over many partitions (producers keyed "
        "by request id, or a model hotter than a core): send window partials and progress "
        "to drift.partials for `driftline drift merge`, instead of DriftScores. Each "
        "partition then has one watermark for all its models.",
    )
    progress_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="Partitioned mode: report a partition's moved watermark at most this "
        "often (always right after a window closed on it).",
    )
    progress_heartbeat_s: float = Field(
        default=30.0,
        gt=0,
        description="Partitioned mode: report every partition's watermark at least this "
        "often, so a restarted merge step hears from all of them.",
    )

    @model_validator(mode="after")
    def _sizes_fit(self) -> DriftProcessorSettings:
        self.window_plan()  # raises ValueError naming the setting and the rule broken
        return self

    def window_plan(self) -> WindowPlan:
        """Window sizes per model.

        :raises ValueError: sizes sliding windows cannot be assembled from, naming the
            setting (``DRIFTLINE_DRIFT_WINDOWS["model"]`` or the global ones).
        """
        try:
            default = WindowSizes(_ms(self.window_s), _ms(self.sliding_s), _ms(self.slide_s))
        except ValueError as exc:
            raise ValueError(
                f"DRIFTLINE_DRIFT_WINDOW_S/SLIDING_S/SLIDE_S ({self.window_s}/"
                f"{self.sliding_s}/{self.slide_s} s): {exc}"
            ) from None
        per_model: dict[str, WindowSizes] = {}
        for model, sizes in self.windows.items():
            tumbling = self.window_s if sizes.tumbling is None else sizes.tumbling
            sliding = self.sliding_s if sizes.sliding is None else sizes.sliding
            slide = self.slide_s if sizes.slide is None else sizes.slide
            try:
                per_model[model] = WindowSizes(_ms(tumbling), _ms(sliding), _ms(slide))
            except ValueError as exc:
                raise ValueError(
                    f"DRIFTLINE_DRIFT_WINDOWS[{model!r}] (tumbling {tumbling} s, sliding "
                    f"{sliding} s, slide {slide} s): {exc}"
                ) from None
        return WindowPlan(default, per_model)


class SloSettings(ProcessorLoopSettings):
    """The SLO processor (``driftline slo run``): windows, SLO targets, burn-rate rules.

    Env prefix ``DRIFTLINE_SLO_``. The burn-rate rules follow the Google SRE workbook
    (chapter 5, "Alerting on SLOs"): a rule fires when the error budget burns at or above
    ``budget_share * period / long_window`` over both its long and its short look-back
    window. With the defaults (30-day period) that is 14.4x over 1 h and 5 min (page: 2 %
    of the month's budget in an hour) and 6x over 6 h and 30 min (ticket: 5 % in six
    hours). ``docs/slo.md`` explains each value and how to tune it.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_SLO_", frozen=True, extra="ignore")

    window_s: float = Field(
        default=60.0, gt=0, description="Tumbling event-time window length, seconds."
    )
    allowed_lateness_s: float = Field(
        default=30.0,
        ge=0,
        description="Watermark = newest event time of the model minus this; a window "
        "closes when the watermark passes its end.",
    )
    relative_accuracy: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Relative error bound of the latency quantiles (DDSketch alpha).",
    )
    availability_target: float = Field(
        default=0.999, gt=0, lt=1, description="Share of requests without a server error."
    )
    latency_target: float = Field(
        default=0.99,
        gt=0,
        lt=1,
        description="Share of requests answered in at most latency_threshold_ms.",
    )
    latency_threshold_ms: float = Field(
        default=1000.0, gt=0, description="The latency SLO's threshold, milliseconds."
    )
    period_days: float = Field(
        default=30.0, gt=0, description="The SLO period the error budget is spread over."
    )
    page_budget_share: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="Page when this share of the period's budget burns in page_long_window_s.",
    )
    page_long_window_s: int = Field(default=3600, gt=0, description="Page rule, long window.")
    page_short_window_s: int = Field(default=300, gt=0, description="Page rule, short window.")
    ticket_budget_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Ticket when this share of the budget burns in ticket_long_window_s.",
    )
    ticket_long_window_s: int = Field(
        default=6 * 3600, gt=0, description="Ticket rule, long window."
    )
    ticket_short_window_s: int = Field(default=1800, gt=0, description="Ticket rule, short window.")
    group_id: str = Field(default="driftline-slo", min_length=1, description="Consumer group.")
    metrics_port: int = Field(
        default=9104, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    state_dir: Path | None = Field(
        default=Path("data/slo-state"),
        description="Local copy of each partition's checkpoint, used when the broker "
        "drops offset-commit metadata (the embedded broker does); empty: none.",
    )


class FeatureProcessorSettings(ProcessorLoopSettings):
    """The features processor (``driftline features run``), prefix ``DRIFTLINE_FEATURES_``.

    Which views it keeps is ``DRIFTLINE_FEATURES_VIEWS_PATH`` (:mod:`schemas.settings`);
    ``docs/features.md`` explains each value.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_FEATURES_", frozen=True, extra="ignore")

    group_id: str = Field(
        default="driftline-features", min_length=1, description="Kafka consumer group."
    )
    metrics_port: int = Field(
        default=9106, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    retry_s: float = Field(
        default=1.0, gt=0, description="Pause after a failed Redis write before retrying."
    )


class ShadowSettings(BaseSettings):
    """The shadow comparison job (``driftline shadow run``): join window, windows, bounds.

    Env prefix ``DRIFTLINE_SHADOW_``. A served answer and the shadow's answer to the same
    request are paired when both arrive within ``join_window_s`` of event time; a window
    closes once the model's newest event time passes its end plus the join window.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_SHADOW_", frozen=True, extra="ignore")

    group_id: str = Field(
        default="driftline-shadow", min_length=1, description="Consumer group on inference.events."
    )
    window_s: float = Field(
        default=60.0, gt=0, description="Tumbling event-time window of the comparison, seconds."
    )
    join_window_s: float = Field(
        default=30.0,
        ge=0,
        description="How long (event time) a served or shadow answer waits for the other.",
    )
    max_pending: int = Field(
        default=100_000,
        ge=1,
        description="Most unpaired answers held per side; beyond it the oldest counts unmatched.",
    )
    poll_timeout_s: float = Field(default=0.5, gt=0, description="Longest wait of one poll.")
    commit_interval_s: float = Field(
        default=5.0, ge=0, description="Commit at least this often (0: after every poll)."
    )
    metrics_port: int = Field(
        default=9109, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address the /metrics server binds.")


class DriftMergeSettings(ProcessorLoopSettings):
    """How the merge step of partitioned drift processing runs (``driftline drift merge``).

    It reads ``drift.partials`` and writes DriftScores; the reference profiles and the
    decision rule are :class:`DriftStatsSettings`' (the same as the drift processors').
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_DRIFT_MERGE_", frozen=True, extra="ignore"
    )

    group_id: str = Field(
        default="driftline-drift-merge", min_length=1, description="Kafka consumer group."
    )
    metrics_port: int = Field(
        default=9110, ge=0, le=65535, description="Prometheus /metrics port (0: not served)."
    )
    state_dir: Path | None = Field(
        default=Path("data/drift-merge-state"),
        description="Local copy of each partials partition's checkpoint, used when the "
        "broker drops offset-commit metadata (the embedded broker does); empty: none.",
    )
