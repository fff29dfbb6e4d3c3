"""The shadow runner: never blocks the caller, counts what it drops, publishes variant=shadow."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from serving.predictor import LoadedModel
from serving.shadow import ShadowJob, ShadowRow, ShadowRunner


def _model() -> LoadedModel:
    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.1, 0.0], [0.9, 1.0]])
    estimator = LogisticRegression().fit(x, [0, 1, 0, 1])
    return LoadedModel("m", "7", "shadow", ("a", "b"), estimator)


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.dropped = 0
        self.predicted = 0

    def runner(self, max_jobs: int) -> ShadowRunner:
        return ShadowRunner(self.events.append, self._drop, self._predict, max_jobs)

    def _drop(self, n: int) -> None:
        self.dropped += n

    def _predict(self, n: int) -> None:
        self.predicted += n


def _job(model: LoadedModel, *ids: str) -> ShadowJob:
    return ShadowJob(model, [ShadowRow(i, None, [0.5, 0.5]) for i in ids])


def test_a_full_queue_drops_and_counts_rows_without_waiting() -> None:
    rec = Recorder()
    runner = rec.runner(max_jobs=1)  # not started: nothing drains the queue
    model = _model()
    assert runner.submit(_job(model, "a"))
    assert not runner.submit(_job(model, "b", "c"))
    assert (rec.dropped, runner.pending()) == (2, 1)
    runner.stop()
    assert rec.dropped == 3 and rec.events == []


def test_shadow_rows_become_shadow_events_with_the_request_ids() -> None:
    rec = Recorder()
    runner = rec.runner(max_jobs=10)
    runner.run_one(ShadowJob(_model(), [ShadowRow("r1", "e1", [0.0, 0.0]),
                                        ShadowRow("r2", None, [1.0, 1.0])]))  # fmt: skip
    assert [(e["request_id"], e["variant"], e["model_version"]) for e in rec.events] == [
        ("r1", "shadow", "7"),
        ("r2", "shadow", "7"),
    ]
    assert rec.events[0]["entity_id"] == "e1" and rec.events[0]["features"] == {"a": 0.0, "b": 0.0}
    assert [e["prediction"] for e in rec.events] == [0.0, 1.0]
    assert rec.predicted == 2


def test_a_failing_shadow_is_counted_as_dropped_not_raised() -> None:
    rec = Recorder()
    broken = LoadedModel("m", "8", "shadow", ("a", "b"), estimator=None)
    rec.runner(max_jobs=10).run_one(_job(broken, "x", "y"))
    assert (rec.dropped, rec.events) == (2, [])
