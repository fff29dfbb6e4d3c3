"""A scored window as a DriftScore record, its headers and its metrics.

One builder for both ways a DriftScore is made: by the drift processor from the window
it counted alone (inputs keyed by model), and by the merge step from the partials of
many partitions (:mod:`stream.merge`). Sharing it is what makes the two records the
same shape field for field, so a consumer cannot tell which topology produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stream import drift_metrics as m
from stream.detectors import ChangePointReport
from stream.performance import WindowPerformance
from stream.runtime.windows import WindowKey
from stream.stats import Calibration, DecisionRule, ReferenceProfile, WindowSketch, score_window
from stream.stats.detect import default_rule

LINEAGE_HEADER = "driftline.lineage"
NATURAL_KEY_HEADER = "driftline.natural-key"
#: ``window_kind`` of the DriftScores.
TUMBLING, SLIDING = "tumbling", "sliding"


@dataclass(frozen=True, slots=True)
class OffsetRange:
    """Input offsets a window covered on one partition (the DriftScore's lineage)."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    def record(self) -> dict[str, Any]:
        """As a DriftScore ``OffsetRange``."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
        }


@dataclass(frozen=True, slots=True)
class DriftOutput:
    """A DriftScore ready to produce: key, record value, headers (lineage)."""

    key: str
    value: dict[str, Any]
    headers: list[tuple[str, str | bytes | None]]
    #: Online detectors' state at this close (not in the Avro record: logged, metrics).
    change_points: ChangePointReport | None = None

    @property
    def natural_key(self) -> tuple[str, str, str, int]:
        """(model, version, window kind, window start): what a consumer de-duplicates on."""
        v = self.value
        return (v["model_name"], v["model_version"], v["window_kind"], v["window_start"])


def decision_rule(profile: ReferenceProfile, fallback: DecisionRule) -> DecisionRule:
    """A calibrated profile's own rule, else the configured one."""
    return default_rule(profile) if profile.calibration is not None else fallback


def drift_output(
    *,
    key: WindowKey,
    end_ms: int,
    kind: str,
    sketch: WindowSketch,
    performance: WindowPerformance,
    late_event_count: int,
    lineage: Sequence[OffsetRange],
    change_points: list[dict[str, object]],
    rule: DecisionRule,
    report: ChangePointReport | None = None,
) -> DriftOutput:
    """Score ``sketch`` and build the window's DriftScore; set its metrics.

    :param lineage: the input ranges the window covered, in the order to report them.
    :param change_points: the DriftScore's ``change_points`` (tumbling windows report
        the detectors; sliding ones report none, the tumbling record of the same close
        does).
    :param report: the detectors' report behind ``change_points`` (logged, metrics).
    """
    profile = sketch.profile
    result = score_window(profile, sketch, rule)
    tumbling = kind == TUMBLING
    value = {
        "model_name": key.model,
        "model_version": key.version,
        "window_start": key.start_ms,
        "window_end": end_ms,
        "late_event_count": late_event_count,
        "window_kind": kind,
        **result.drift_score_fields(),
        "critical": result.data.critical,
        "lineage": [r.record() for r in lineage],
        **performance.drift_score_fields(),
        "change_points": change_points,
        # calibrated at the tumbling size only
        "expected_false_critical_per_week": _expected_false_critical(
            profile, sketch.event_count, end_ms - key.start_ms
        )
        if tumbling
        else None,
    }
    labels = (key.model, key.version)
    if tumbling:
        m.DRIFT_SCORE.labels(*labels).set(result.data.drift_score)
        m.DRIFTED.labels(*labels).set(1.0 if result.data.is_drift else 0.0)
        m.WINDOW_EVENTS.labels(*labels).set(sketch.event_count)
        m.WINDOWS_CLOSED.labels(*labels).inc()
        for variant in value["performance"]:
            for field in ("estimated_accuracy", "accuracy"):
                if variant[field] is not None:
                    name = "estimated" if field == "estimated_accuracy" else "realised"
                    m.ACCURACY.labels(*labels, variant["variant"], name).set(variant[field])
        for feature in result.data.features:
            if feature.data.test_stat is not None:
                m.FEATURE_STATISTIC.labels(*labels, feature.meta.name).set(feature.data.test_stat)
    else:
        m.SLIDING_DRIFT_SCORE.labels(*labels).set(result.data.drift_score)
    return DriftOutput(
        key=key.model, value=value, headers=_headers(key, kind, lineage), change_points=report
    )


def _headers(
    key: WindowKey, kind: str, lineage: Sequence[OffsetRange]
) -> list[tuple[str, str | bytes | None]]:
    """``topic:partition:first-last`` per input partition (comma-separated), and the
    natural key ``model/version/kind/start``."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in lineage:
        first, last = spans.get((r.topic, r.partition), (r.first_offset, r.last_offset))
        spans[(r.topic, r.partition)] = (min(first, r.first_offset), max(last, r.last_offset))
    text = ",".join(f"{t}:{p}:{first}-{last}" for (t, p), (first, last) in sorted(spans.items()))
    natural = f"{key.model}/{key.version}/{kind}/{key.start_ms}"
    return [(LINEAGE_HEADER, text.encode()), (NATURAL_KEY_HEADER, natural.encode())]


def _expected_false_critical(
    profile: ReferenceProfile, events: int, window_ms: int
) -> float | None:
    """Critical windows a week expected from noise at this window's traffic (the
    calibration's 95 % upper bound; None for an uncalibrated profile)."""
    if profile.calibration is None:
        return None
    per_minute = events * 60_000 / window_ms
    calibration = Calibration.model_validate(profile.calibration)
    return calibration.expected_false_alerts_per_week(per_minute, level="critical")
