"""DriftPartial records (``schemas/avro/drift_partial.avsc``) to and from the data classes.

The partitioned drift processor turns each :class:`~stream.partials.WindowPartial` and
:class:`~stream.partials.PartitionProgress` into a record (:func:`partial_to_record`,
:func:`progress_to_record`) and encodes it with the project codec as ``DriftPartial``;
the merge step decodes and calls :func:`record_to_partial`, which rebuilds the sketch on
the (model, version)'s reference profile.

Exactness: every count and the fixed-point confidence sums are Avro longs, and the
floats (means, sums of squares, min, max) are Avro doubles, so a partial comes back
bit for bit; merging round-tripped partials equals merging the originals. The one
encoding rule: records carry no infinity (docs/schemas.md), so the ``+inf``/``-inf``
min/max of a column with no value yet travel as ``null``. Every column with a value has
finite min and max (the processors refuse non-finite features at decode); a sketch
that somehow holds one is refused by the codec's encode, never silently changed.

:func:`record_to_partial` trusts nothing in the record beyond its Avro types: a share
that would corrupt the merged window (counts that do not fit the profile's grid, a sketch
on another reference, counts that do not add up) raises a
:class:`~stream.exceptions.PartialRecordError` subclass naming the model, version, window
and source partition, for the merge step to dead-letter. Nothing else is raised for bad
content. Why flattened Avro arrays and not numpy bytes: docs/decisions.md (2026-11-30,
DriftPartial wire format).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.detectors import DetectorState
from stream.exceptions import (
    PartialRecordError,
    PartialShapeError,
    PartialValueError,
    ReferenceMismatchError,
    UnknownProfileError,
)
from stream.partials import SLIDING, TUMBLING, PartitionProgress, Source, WindowPartial
from stream.performance import CONFIDENCE_SCALE, VariantTally, WindowPerformance
from stream.profiles import ProfileSource
from stream.stats import WindowSketch
from stream.stats.grid import CategoryTable, NumericGrid
from stream.stats.sketch import CategoryCounts, NumericCounts

WINDOW, PROGRESS = "window", "progress"
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# -- data classes to records ----------------------------------------------------------

#: More input partitions than any Kafka topic Driftline reads has: a progress record
#: claiming more is refused (the merge step would wait for partitions that do not exist).
MAX_PARTITIONS = 10_000


def partial_to_record(partial: WindowPartial) -> dict[str, Any]:
    """The ``DriftPartial`` record (kind ``window``) of one partition's window share."""
    sketch = partial.sketch
    return {
        "kind": WINDOW,
        "source_topic": partial.source.topic,
        "source_partition": partial.source.partition,
        "progress": None,
        "window": {
            "model_name": partial.model,
            "model_version": partial.version,
            "window_kind": partial.kind,
            "window_start": partial.start_ms,
            "window_end": partial.end_ms,
            "late_event_count": partial.late_event_count,
            "ranges": [{"first_offset": a, "last_offset": b} for a, b in partial.ranges],
            "change_points": [_detector_record(s) for s in partial.change_points],
            "performance": [
                {
                    "variant": name,
                    "prediction_count": t.predictions,
                    "confidence_sum": t.confidence_sum,
                    "confidence_count": t.confidence_count,
                    "labelled_count": t.labelled,
                    "correct_count": t.correct,
                }
                for name, t in partial.performance.variants.items()
            ],
            "sketch": {
                "reference_id": sketch.reference_id,
                "event_count": sketch.event_count,
                "numeric": _numeric_record(sketch.numeric),
                "categorical": _category_record(sketch.categorical),
                "prediction": None
                if sketch.prediction is None
                else _category_record(sketch.prediction),
                "probability": None
                if sketch.probability is None
                else _numeric_record(sketch.probability),
            },
        },
    }


def progress_to_record(progress: PartitionProgress) -> dict[str, Any]:
    """The ``DriftPartial`` record (kind ``progress``) of a partition's watermark."""
    return {
        "kind": PROGRESS,
        "source_topic": progress.source.topic,
        "source_partition": progress.source.partition,
        "progress": {
            "partition_count": progress.partition_count,
            "watermark_ms": progress.watermark_ms,
            "idle": progress.idle,
        },
        "window": None,
    }


def _detector_record(state: DetectorState) -> dict[str, Any]:
    return {
        "detector": state.detector,
        "feature": state.feature,
        "drift_detected": state.drift_detected,
        "change_points": state.change_points,
        "last_change_ms": state.last_change_ms,
        "statistic": state.statistic,
    }


def _numeric_record(counts: NumericCounts) -> dict[str, Any]:
    features, width = counts.counts.shape if counts.counts.ndim == 2 else (0, 0)
    return {
        "features": int(features),
        "width": int(width),
        "counts": counts.counts.ravel().tolist(),
        "missing": counts.missing.tolist(),
        "n": counts.n.tolist(),
        "mean": counts.mean.tolist(),
        "m2": counts.m2.tolist(),
        # Only the empty column's start values become null; any other non-finite value
        # stays a float, which the codec refuses (naming the field) rather than alter.
        "min": [None if v == np.inf else v for v in counts.min.tolist()],
        "max": [None if v == -np.inf else v for v in counts.max.tolist()],
    }


def _category_record(counts: CategoryCounts) -> dict[str, Any]:
    return {
        "sizes": [int(c.size) for c in counts.counts],
        "counts": [v for c in counts.counts for v in c.tolist()],
        "missing": counts.missing.tolist(),
    }


# -- records to data classes ----------------------------------------------------------


def record_to_partial(
    record: Mapping[str, Any], profiles: ProfileSource
) -> WindowPartial | PartitionProgress:
    """The data class of a decoded ``DriftPartial`` record.

    :param record: the record as the codec decodes it (current schema's shape).
    :param profiles: where the (model, version)'s reference profile comes from.
    :raises UnknownProfileError: no profile for the partial's (model, version).
    :raises ReferenceMismatchError: the sketch was counted on another reference.
    :raises PartialShapeError: its counts do not fit the profile's grid.
    :raises PartialValueError: a value it cannot hold (negative or inconsistent counts,
        a kind without its part, a record that is not a DriftPartial at all).
    """
    source = _source(record)
    if source is None:
        raise PartialValueError("not a DriftPartial record: no source topic and partition")
    if source[1] < 0:
        raise PartialValueError(f"negative partition {source[1]}", source=source)
    try:
        kind = record["kind"]
        if kind == PROGRESS:
            return _progress(record["progress"], source)
        if kind == WINDOW:
            return _Reader(record["window"], source, profiles).partial()
    except PartialRecordError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        # Only a dict that did not come from the codec gets here (the Avro types hold).
        raise PartialValueError(
            f"not a DriftPartial record: {type(exc).__name__}: {exc}", source=source
        ) from None
    raise PartialValueError(f"unknown kind {kind!r}", source=source)


def _source(record: Mapping[str, Any]) -> tuple[str, int] | None:
    if not isinstance(record, Mapping):
        return None
    topic, partition = record.get("source_topic"), record.get("source_partition")
    if isinstance(topic, str) and isinstance(partition, int) and not isinstance(partition, bool):
        return (topic, partition)
    return None


def _progress(part: Mapping[str, Any] | None, source: tuple[str, int]) -> PartitionProgress:
    if part is None:
        raise PartialValueError("kind 'progress' without its progress part", source=source)
    count = int(part["partition_count"])
    if count > MAX_PARTITIONS:  # the merge step would wait for every one of them
        raise PartialValueError(f"partition_count {count} is over {MAX_PARTITIONS}", source=source)
    if not 0 <= source[1] < count:
        raise PartialValueError(
            f"partition {source[1]} outside the {count} partitions it reports", source=source
        )
    watermark = part["watermark_ms"]
    return PartitionProgress(
        source=Source(*source),
        partition_count=count,
        watermark_ms=None if watermark is None else int(watermark),
        idle=bool(part["idle"]),
    )


class _Reader:
    """Rebuilds one window share, raising errors that name it."""

    def __init__(
        self,
        window: Mapping[str, Any] | None,
        source: tuple[str, int],
        profiles: ProfileSource,
    ) -> None:
        if window is None:
            raise PartialValueError("kind 'window' without its window part", source=source)
        self.window = window
        self.source = source
        self.profiles = profiles
        self.model = str(window["model_name"])
        self.version = str(window["model_version"])
        self.span = (
            str(window["window_kind"]),
            int(window["window_start"]),
            int(window["window_end"]),
        )

    def error(self, cls: type[PartialRecordError], problem: str) -> PartialRecordError:
        """``cls`` naming this share."""
        return cls(
            problem, source=self.source, model=self.model, version=self.version, window=self.span
        )

    def partial(self) -> WindowPartial:
        """The share, checked against its profile."""
        kind, start, end = self.span
        if kind not in (TUMBLING, SLIDING):
            raise self.error(PartialValueError, f"unknown window kind {kind!r}")
        if end <= start:
            raise self.error(PartialValueError, "window end is not after its start")
        late = int(self.window["late_event_count"])
        self.nonnegative(np.array([late]), "late_event_count")
        ranges = [(int(r["first_offset"]), int(r["last_offset"])) for r in self.window["ranges"]]
        if any(first < 0 or last < first for first, last in ranges):
            raise self.error(PartialValueError, f"offset ranges {ranges} are not first <= last")
        return WindowPartial(
            model=self.model,
            version=self.version,
            kind=kind,
            start_ms=start,
            end_ms=end,
            source=Source(*self.source),
            sketch=self.sketch(self.window["sketch"]),
            performance=self.performance(self.window["performance"]),
            late_event_count=late,
            ranges=ranges,
            change_points=[self.detector(d) for d in self.window["change_points"]],
        )

    # -- sketch ---------------------------------------------------------------------

    def sketch(self, record: Mapping[str, Any]) -> WindowSketch:
        profile = self.profiles.get(self.model, self.version)
        if profile is None:
            raise self.error(UnknownProfileError, "no reference profile for this model version")
        if record["reference_id"] != profile.reference_id:
            raise self.error(
                ReferenceMismatchError,
                f"sketch counted on reference {record['reference_id']!r}, "
                f"the profile is {profile.reference_id!r}",
            )
        events = int(record["event_count"])
        self.nonnegative(np.array([events]), "event_count")
        sketch = WindowSketch(profile)
        sketch.event_count = events
        self.numeric(sketch.numeric, record["numeric"], "numeric", events, exact=True)
        self.categories(
            sketch.categorical, record["categorical"], "categorical", events, exact=True
        )
        self.optional(sketch, record)
        return sketch

    def optional(self, sketch: WindowSketch, record: Mapping[str, Any]) -> None:
        """Prediction and probability parts: present exactly when the profile has them."""
        for name, mine in (("prediction", sketch.prediction), ("probability", sketch.probability)):
            theirs = record[name]
            if (mine is None) != (theirs is None):
                has = "has" if mine is not None else "has no"
                raise self.error(
                    PartialShapeError,
                    f"the profile {has} a {name} part, the sketch "
                    f"{'has none' if theirs is None else 'has one'}",
                )
        if sketch.prediction is not None:
            self.categories(
                sketch.prediction,
                record["prediction"],
                "prediction",
                sketch.event_count,
                exact=False,
            )
        if sketch.probability is not None:
            self.numeric(
                sketch.probability,
                record["probability"],
                "probability",
                sketch.event_count,
                exact=False,
            )

    def numeric(
        self, into: NumericCounts, record: Mapping[str, Any], what: str, events: int, *, exact: bool
    ) -> None:
        """Fill ``into`` from its record; ``exact``: every event has a value or is missing
        (the features; the probability part counts only events that carried one)."""
        grid: NumericGrid = into.grid
        k, width = len(grid.names), grid.width
        got = (int(record["features"]), int(record["width"]))
        if got != (k, width):
            raise self.error(
                PartialShapeError,
                f"{what} counts are {got[0]} columns x {got[1]} bins, "
                f"the profile's grid {k} x {width}",
            )
        counts = self.longs(record["counts"], k * width, f"{what}.counts").reshape(k, width)
        missing = self.longs(record["missing"], k, f"{what}.missing")
        n = self.longs(record["n"], k, f"{what}.n")
        mean = self.doubles(record["mean"], k, f"{what}.mean")
        m2 = self.doubles(record["m2"], k, f"{what}.m2")
        low = self.bounds(record["min"], k, f"{what}.min", np.inf, n)
        high = self.bounds(record["max"], k, f"{what}.max", -np.inf, n)
        self.nonnegative(counts, f"{what}.counts")
        self.nonnegative(missing, f"{what}.missing")
        self.nonnegative(n, f"{what}.n")
        if not np.array_equal(counts.sum(axis=1), n):
            raise self.error(PartialValueError, f"{what} bin counts do not add up to n")
        seen = n + missing
        if np.any(seen != events) if exact else np.any(seen > events):
            raise self.error(
                PartialValueError,
                f"{what} n + missing {seen.tolist()} do not fit {events} events",
            )
        into.counts, into.missing, into.n = counts, missing, n
        into.mean, into.m2, into.min, into.max = mean, m2, low, high

    def categories(
        self,
        into: CategoryCounts,
        record: Mapping[str, Any],
        what: str,
        events: int,
        *,
        exact: bool,
    ) -> None:
        """Fill ``into`` from its record (``exact`` as in :meth:`numeric`)."""
        table: CategoryTable = into.table
        sizes = [int(c.size) for c in into.counts]
        got = [int(s) for s in record["sizes"]]
        if got != sizes:
            raise self.error(
                PartialShapeError,
                f"{what} counts have {got} slots per column, the profile's categories "
                f"{sizes} (categories + 1 unseen)",
            )
        flat = self.longs(record["counts"], sum(sizes), f"{what}.counts")
        missing = self.longs(record["missing"], len(table.names), f"{what}.missing")
        self.nonnegative(flat, f"{what}.counts")
        self.nonnegative(missing, f"{what}.missing")
        columns = np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []
        seen = np.array([int(c.sum()) for c in columns], dtype=np.int64) + missing
        if np.any(seen != events) if exact else np.any(seen > events):
            raise self.error(
                PartialValueError,
                f"{what} counts + missing {seen.tolist()} do not fit {events} events",
            )
        into.counts, into.missing = [c.copy() for c in columns], missing

    # -- array checks -----------------------------------------------------------------

    def longs(self, values: Sequence[int], size: int, what: str) -> IntArray:
        if len(values) != size:
            raise self.error(PartialShapeError, f"{what} has {len(values)} values, expected {size}")
        out: IntArray = np.array(values, dtype=np.int64).reshape(size)
        return out

    def doubles(self, values: Sequence[float], size: int, what: str) -> FloatArray:
        if len(values) != size:
            raise self.error(PartialShapeError, f"{what} has {len(values)} values, expected {size}")
        out: FloatArray = np.array(values, dtype=np.float64).reshape(size)
        if not np.all(np.isfinite(out)):
            raise self.error(PartialValueError, f"{what} holds a non-finite value")
        return out

    def bounds(
        self, values: Sequence[float | None], size: int, what: str, empty: float, n: IntArray
    ) -> FloatArray:
        """Min or max: null exactly where the column has no value (``empty`` there)."""
        if len(values) != size:
            raise self.error(PartialShapeError, f"{what} has {len(values)} values, expected {size}")
        absent = np.array([v is None for v in values], dtype=bool)
        if not np.array_equal(absent, n == 0):
            raise self.error(PartialValueError, f"{what} is null where n > 0 or set where n = 0")
        out: FloatArray = np.array([empty if v is None else v for v in values], dtype=np.float64)
        if not np.all(np.isfinite(out[~absent])):
            raise self.error(PartialValueError, f"{what} holds a non-finite value")
        return out

    def nonnegative(self, values: IntArray, what: str) -> None:
        if values.size and int(values.min()) < 0:
            raise self.error(PartialValueError, f"{what} holds a negative count")

    # -- performance and detectors ----------------------------------------------------

    def performance(self, records: Sequence[Mapping[str, Any]]) -> WindowPerformance:
        out = WindowPerformance()
        for r in records:
            name = str(r["variant"])
            if name in out.variants:
                raise self.error(PartialValueError, f"variant {name!r} tallied twice")
            tally = VariantTally(
                predictions=int(r["prediction_count"]),
                confidence_sum=int(r["confidence_sum"]),
                confidence_count=int(r["confidence_count"]),
                labelled=int(r["labelled_count"]),
                correct=int(r["correct_count"]),
            )
            if (
                min(tally.predictions, tally.confidence_sum, tally.labelled) < 0
                or not 0 <= tally.confidence_count <= tally.predictions
                or not 0 <= tally.correct <= tally.labelled
                or tally.confidence_sum > tally.confidence_count * CONFIDENCE_SCALE
            ):
                raise self.error(
                    PartialValueError, f"variant {name!r} has an impossible tally {tally}"
                )
            out.variants[name] = tally
        return out

    def detector(self, r: Mapping[str, Any]) -> DetectorState:
        state = DetectorState(
            detector=str(r["detector"]),
            feature=str(r["feature"]),
            drift_detected=bool(r["drift_detected"]),
            change_points=int(r["change_points"]),
            last_change_ms=None if r["last_change_ms"] is None else int(r["last_change_ms"]),
            statistic=None if r["statistic"] is None else float(r["statistic"]),
        )
        if state.statistic is not None and not np.isfinite(state.statistic):
            raise self.error(PartialValueError, f"detector {state.detector} statistic not finite")
        if state.change_points < 0:
            raise self.error(PartialValueError, f"detector {state.detector} counts < 0 changes")
        return state
