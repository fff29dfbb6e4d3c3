"""Valid sample records of every Driftline type, for unit and integration tests."""

from __future__ import annotations

import uuid
from typing import Any

FEATURE_NAMES = tuple(f"feature_{i:02d}" for i in range(30))


def inference_event(i: int = 0, model: str = "fraud-detector", **changes: Any) -> dict[str, Any]:
    """An InferenceEvent with 30 features, varied by ``i``."""
    record: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=i + 1)),
        "request_id": f"req-{i:09d}",
        "event_time": 1_764_000_000_000 + i,
        "model_name": model,
        "model_version": "7",
        "variant": ("baseline", "canary", "shadow")[i % 3],
        "features": {name: (i * 31 + j) / 7.0 for j, name in enumerate(FEATURE_NAMES)},
        "categorical_features": {"country": "DE" if i % 2 else "FR"},
        "prediction": 0.5 + (i % 50) / 100,
        "probabilities": {"fraud": 0.25, "legit": 0.75},
        "latency_ms": 3.25 + i % 10,
        "outcome": "ok",
        "error_type": None,
        "entity_id": f"customer-{i % 100}",
        "trace_id": None,
        "source": "tests",
    }
    record.update(changes)
    return record


def samples() -> dict[str, dict[str, Any]]:
    """One full valid record of each type (optional fields filled, to exercise them)."""
    return {
        "InferenceEvent": inference_event(),
        "FeedbackEvent": {
            "feedback_id": "f-1",
            "request_id": "req-000000001",
            "model_name": "fraud-detector",
            "model_version": "7",
            "label": "fraud",
            "event_time": 1_764_000_100_000,
            "source": "labelling-service",
        },
        "DriftScore": {
            "model_name": "fraud-detector",
            "model_version": "7",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_000_060_000,
            "event_count": 1200,
            "late_event_count": 3,
            "drift_score": 0.31,
            "drifted": True,
            "features": [
                {
                    "feature": "feature_00",
                    "statistic": 0.31,
                    "p_value": 0.001,
                    "threshold": 0.2,
                    "drifted": True,
                    "sample_size": 1200,
                },
                {
                    "feature": "feature_01",
                    "statistic": 0.05,
                    "p_value": None,
                    "threshold": 0.2,
                    "drifted": False,
                    "sample_size": 1200,
                },
            ],
            "prediction_drift": 0.12,
            "reference_id": "ref-2026-11-01",
            "method": "psi",
            "thresholds": {"feature": 0.2, "share_drifted": 0.3},
            "window_kind": "tumbling",
            "critical": False,
            "lineage": [
                {
                    "topic": "inference.events",
                    "partition": 0,
                    "first_offset": 10,
                    "last_offset": 1209,
                }
            ],
            "performance": [
                {
                    "variant": "champion",
                    "prediction_count": 1080,
                    "estimated_accuracy": 0.93,
                    "labelled_count": 400,
                    "accuracy": 0.91,
                    "error_rate": 0.09,
                },
                {
                    "variant": "canary",
                    "prediction_count": 120,
                    "estimated_accuracy": None,
                    "labelled_count": 0,
                    "accuracy": None,
                    "error_rate": None,
                },
            ],
            "estimated_accuracy": 0.93,
            "accuracy": 0.91,
            "labelled_count": 400,
            "change_points": [
                {
                    "detector": "page_hinkley",
                    "target": "probability",
                    "change_points": 1,
                    "last_change_ms": 1_764_000_030_000,
                    "statistic": 0.4,
                }
            ],
            "expected_false_critical_per_week": 0.01,
        },
        "SloWindow": {
            "model_name": "fraud-detector",
            "model_version": "7",
            "variant": "canary",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_000_060_000,
            "request_count": 1000,
            "client_error_count": 4,
            "server_error_count": 2,
            "error_rate": 0.002,
            "latency_p50_ms": 3.1,
            "latency_p95_ms": 9.8,
            "latency_p99_ms": 21.0,
            "burn_rates": {"5m": 1.5, "1h": 0.7},
            "late_event_count": 3,
            "slow_request_count": 12,
            "latency_threshold_ms": 1000.0,
            "availability_target": 0.999,
            "latency_target": 0.99,
            "latency_burn_rates": {"5m": 1.2, "1h": 0.9},
            "burn_alerts": [
                {
                    "slo": "availability",
                    "severity": "page",
                    "long_window": "1h",
                    "short_window": "5m",
                    "threshold": 14.4,
                    "long_burn_rate": 0.7,
                    "short_burn_rate": 1.5,
                    "firing": False,
                }
            ],
        },
        "Alert": {
            "alert_name": "DriftlineFeatureDrift",
            "fingerprint": "ab12cd34",
            "severity": "warning",
            "state": "firing",
            "labels": {"model": "fraud-detector"},
            "annotations": {"summary": "PSI 0.31 > 0.2"},
            "starts_at": 1_764_000_060_000,
            "ends_at": None,
        },
        "RetrainRequest": {
            "idempotency_key": "fraud-detector:7:1764000000000",
            "model_name": "fraud-detector",
            "model_version": "7",
            "trigger": "drift",
            "evidence": {
                "window_start": 1_764_000_000_000,
                "window_end": 1_764_000_060_000,
                "scores": {"psi": 0.31},
                "details": {"feature": "feature_00"},
            },
            "urgency": "high",
            "requested_by": "stream.drift",
            "requested_at": 1_764_000_061_000,
            "mlflow_run_id": None,
        },
        "DeploymentEvent": {
            "deployment_id": "d-1",
            "model_name": "fraud-detector",
            "champion_version": "7",
            "canary_version": "8",
            "canary_share": 0.1,
            "shadow_version": None,
            "action": "canary_started",
            "reason": "retrained after drift",
            "evidence": {"auc": 0.91},
            "event_time": 1_764_000_070_000,
        },
        "ShadowComparison": {
            "model_name": "fraud-detector",
            "champion_version": "7",
            "shadow_version": "8",
            "window_start": 1_764_000_000_000,
            "window_end": 1_764_000_060_000,
            "pair_count": 950,
            "agreement_rate": 0.97,
            "prediction_shift": 0.02,
            "probability_shift": 0.04,
            "champion_latency_p50_ms": 2.1,
            "champion_latency_p99_ms": 7.5,
            "shadow_latency_p50_ms": 2.4,
            "shadow_latency_p99_ms": 9.0,
            "unmatched_champion_count": 50,
            "unmatched_shadow_count": 0,
            "join_window_ms": 30_000,
        },
        "DriftPartial": {
            "kind": "window",
            "source_topic": "inference.events",
            "source_partition": 2,
            "progress": None,
            "window": {
                "model_name": "fraud-detector",
                "model_version": "7",
                "window_kind": "tumbling",
                "window_start": 1_764_000_000_000,
                "window_end": 1_764_000_060_000,
                "late_event_count": 1,
                "ranges": [{"first_offset": 100, "last_offset": 104}],
                "change_points": [
                    {
                        "detector": "adwin_error",
                        "feature": "error",
                        "drift_detected": False,
                        "change_points": 0,
                        "last_change_ms": None,
                        "statistic": 0.1,
                    }
                ],
                "performance": [
                    {
                        "variant": "champion",
                        "prediction_count": 5,
                        "confidence_sum": 4 * 2**32,
                        "confidence_count": 5,
                        "labelled_count": 2,
                        "correct_count": 2,
                    }
                ],
                "sketch": {
                    "reference_id": "ref-0123456789abcdef",
                    "event_count": 5,
                    "numeric": {
                        "features": 2,
                        "width": 3,
                        "counts": [1, 3, 0, 0, 0, 0],
                        "missing": [1, 5],
                        "n": [4, 0],
                        "mean": [31.5, 0.0],
                        "m2": [9.0, 0.0],
                        "min": [28.0, None],
                        "max": [35.0, None],
                    },
                    "categorical": {"sizes": [3], "counts": [2, 2, 1], "missing": [0]},
                    "prediction": None,
                    "probability": None,
                },
            },
        },
    }
