"""DriftPartial records: exact round trips through the real Avro codec, typed refusals.

Profiles are real: the breast-cancer reference the project ships
(``data/sample/drift_reference.csv``, 31 numeric columns) and one with a categorical
feature and prediction/probability parts, both read by :class:`FileProfileSource`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from schemas.catalog import DRIFT_PARTIAL, TOPIC_RECORDS
from schemas.codec import make_codec
from schemas.exceptions import InvalidRecordError, RecordValidationError
from schemas.topics import DRIFT_PARTIALS
from stream.detectors import DetectorState
from stream.exceptions import (
    PartialRecordError,
    PartialShapeError,
    PartialValueError,
    ReferenceMismatchError,
    UnknownProfileError,
)
from stream.partials import PartitionProgress, Source, WindowPartial
from stream.partials_codec import partial_to_record, progress_to_record, record_to_partial
from stream.performance import WindowPerformance, confidence
from stream.profiles import FileProfileSource
from stream.stats import ReferenceProfile, WindowSketch

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data" / "sample" / "drift_reference.csv"
CURRENT = REPO / "data" / "sample" / "drift_current.csv"
CODEC = make_codec()
RNG = np.random.default_rng(6)
BC, SHOP = ("breast-cancer-classifier", "1"), ("shop-classifier", "3")
START, END = 1_764_000_000_000, 1_764_000_060_000
SOURCE = Source("inference.events", 2)

# The shop profile: numeric, one categorical column, predicted class and probability.
_REF = RNG.normal(size=(2000, 3))
SHOP_PROFILE = ReferenceProfile.build(
    np.hstack([_REF, RNG.choice(["a", "b", "c"], size=(2000, 1))]).astype(object),
    ["x", "y", "z", "colour"],
    categorical_columns=["colour"],
    predicted=RNG.integers(0, 2, 2000),
    probability=RNG.random(2000),
    bins=12,
)
W = SHOP_PROFILE.numeric_grid.width


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> FileProfileSource:
    """A profile directory as the drift processor reads it: ``<model>/<version>.json``."""
    root = tmp_path_factory.mktemp("profiles")
    for (model, version), profile in (
        (BC, ReferenceProfile.from_csv(SHIPPED)),
        (SHOP, SHOP_PROFILE),
    ):
        (root / model).mkdir()
        profile.save(root / model / f"{version}.json")
    return FileProfileSource(root)


def _breast_cancer_rows() -> npt.NDArray[np.float64]:
    rows: npt.NDArray[np.float64] = np.genfromtxt(CURRENT, delimiter=",", skip_header=1)
    rows[RNG.random(rows.shape) < 0.03] = np.nan
    rows[:, 5] = np.nan  # one column never seen: its min/max stay +-inf
    return rows


BC_ROWS = _breast_cancer_rows()
SHOP_ROWS = RNG.normal(0.3, 1, size=(300, 3))
SHOP_ROWS[:150, 2] = np.nan  # unseen in the first half: partials of it keep +-inf bounds
SHOP_CAT = np.array(["a", "b", "d", None], dtype=object)[RNG.integers(0, 4, size=(300, 1))]
SHOP_PRED = RNG.integers(0, 3, 300)
SHOP_PROB = RNG.random(300)
VARIANT_CODES = RNG.integers(0, 2, 300).astype(np.int8)
CONFIDENCE = confidence(RNG.random((300, 1)))


def _sketch(which: tuple[str, str], profiles: FileProfileSource, rows: slice) -> WindowSketch:
    profile = profiles.get(*which)
    assert profile is not None
    if which == BC:
        return WindowSketch(profile).update(BC_ROWS[rows])
    return WindowSketch(profile).update(
        SHOP_ROWS[rows],
        categorical=SHOP_CAT[rows],
        predicted=SHOP_PRED[rows],
        probability=SHOP_PROB[rows],
    )


def _partial(
    which: tuple[str, str], profiles: FileProfileSource, rows: slice, partition: int = 2
) -> WindowPartial:
    performance = WindowPerformance()
    performance.add_predictions(VARIANT_CODES[rows], CONFIDENCE[rows])
    performance.add_label("champion", True)
    performance.add_label("champion", False)
    return WindowPartial(
        model=which[0],
        version=which[1],
        kind="tumbling",
        start_ms=START,
        end_ms=END,
        source=Source("inference.events", partition),
        sketch=_sketch(which, profiles, rows),
        performance=performance,
        late_event_count=3,
        ranges=[(1000, 1000 + (rows.stop or 0))],
        change_points=[
            DetectorState("page_hinkley_feature", "mean radius", True, 2, START + 5, None),
            DetectorState("adwin_error", "error", False, 0, None, 0.125),
        ],
    )


def _wire(record: dict[str, Any]) -> dict[str, Any]:
    """Through the real codec: encode (with its checks) as DriftPartial, decode."""
    decoded = CODEC.decode(CODEC.encode(DRIFT_PARTIAL, record))
    assert decoded.record_type == DRIFT_PARTIAL
    return decoded.value


def _arrays(sketch: WindowSketch) -> dict[str, Any]:
    """Every array of a sketch, to compare bit for bit (inf included)."""
    out: dict[str, Any] = {"reference_id": sketch.reference_id, "events": sketch.event_count}
    parts = {"numeric": sketch.numeric, "probability": sketch.probability}
    for name, part in parts.items():
        if part is not None:
            for field in ("counts", "missing", "n", "mean", "m2", "min", "max"):
                out[f"{name}.{field}"] = getattr(part, field).tobytes()
    for name, cat in {"categorical": sketch.categorical, "prediction": sketch.prediction}.items():
        if cat is not None:
            out[f"{name}.counts"] = [c.tobytes() for c in cat.counts]
            out[f"{name}.missing"] = cat.missing.tobytes()
    return out


def _assert_same_partial(got: WindowPartial | PartitionProgress, want: WindowPartial) -> None:
    assert isinstance(got, WindowPartial)
    assert _arrays(got.sketch) == _arrays(want.sketch)
    assert got.sketch.profile is not None and got.sketch.reference_id == want.sketch.reference_id
    assert got.performance == want.performance
    assert got.performance.drift_score_fields() == want.performance.drift_score_fields()
    for name in ("model", "version", "kind", "start_ms", "end_ms", "source"):
        assert getattr(got, name) == getattr(want, name), name
    assert (got.late_event_count, got.ranges) == (want.late_event_count, want.ranges)
    assert got.change_points == want.change_points


# -- registration ---------------------------------------------------------------------


def test_the_topic_carries_drift_partials() -> None:
    assert TOPIC_RECORDS[DRIFT_PARTIALS.name] == DRIFT_PARTIAL
    assert (DRIFT_PARTIALS.name, DRIFT_PARTIALS.partitions) == ("drift.partials", 3)
    assert DRIFT_PARTIALS.config() == {"cleanup.policy": "delete", "retention.ms": "86400000"}


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("which", [BC, SHOP], ids=["breast-cancer", "categorical"])
@pytest.mark.parametrize("rows", [slice(0, 120), slice(0, 0)], ids=["events", "empty"])
def test_a_window_partial_round_trips_exactly(
    which: tuple[str, str], rows: slice, profiles: FileProfileSource
) -> None:
    partial = _partial(which, profiles, rows)
    if rows.stop:
        assert np.isinf(partial.sketch.numeric.min).any()  # an unseen column travels too
    got = record_to_partial(_wire(partial_to_record(partial)), profiles)
    _assert_same_partial(got, partial)


def test_the_categorical_profile_fills_every_part(profiles: FileProfileSource) -> None:
    # The round trip above would prove little if the optional parts were empty.
    sketch = _partial(SHOP, profiles, slice(0, 120)).sketch
    assert sketch.prediction is not None and sketch.prediction.missing.sum() == 0
    assert sketch.probability is not None and int(sketch.probability.n[0]) == 120
    assert sum(int(c.sum()) for c in sketch.categorical.counts) > 0


@pytest.mark.parametrize("watermark", [None, END + 5_000])
@pytest.mark.parametrize("idle", [False, True])
def test_progress_round_trips(watermark: int | None, idle: bool) -> None:
    progress = PartitionProgress(SOURCE, 6, watermark, idle)
    assert record_to_partial(_wire(progress_to_record(progress)), FileProfileSource(None)) == (
        progress
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=hst.sampled_from([BC, SHOP]),
    cuts=hst.lists(hst.integers(0, 300), min_size=1, max_size=5),
)
def test_merging_round_tripped_partials_equals_merging_the_originals(
    which: tuple[str, str], cuts: list[int], profiles: FileProfileSource
) -> None:
    bounds = [0, *sorted(cuts), 300]
    originals = [
        _partial(which, profiles, slice(lo, hi), partition=i)
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    wired = [record_to_partial(_wire(partial_to_record(p)), profiles) for p in originals]
    assert all(isinstance(p, WindowPartial) for p in wired)
    profile = profiles.get(*which)
    assert profile is not None
    want = WindowSketch.merged(profile, [p.sketch for p in originals])
    got = WindowSketch.merged(profile, [p.sketch for p in wired if isinstance(p, WindowPartial)])
    assert _arrays(got) == _arrays(want)
    perf_want, perf_got = WindowPerformance(), WindowPerformance()
    for original, back in zip(originals, wired, strict=True):
        perf_want.merge(original.performance)
        assert isinstance(back, WindowPartial)
        perf_got.merge(back.performance)
    assert perf_got.drift_score_fields() == perf_want.drift_score_fields()


# -- refusals -------------------------------------------------------------------------


def _record(profiles: FileProfileSource, which: tuple[str, str] = SHOP) -> dict[str, Any]:
    return _wire(partial_to_record(_partial(which, profiles, slice(0, 50))))


def _assert_names_the_share(error: PartialRecordError, model: str, version: str) -> None:
    text = str(error)
    for part in (repr(model), repr(version), f"tumbling window [{START}, {END})"):
        assert part in text, (part, text)
    assert "inference.events[2]" in text
    assert (error.model, error.version, error.window, error.source) == (
        model,
        version,
        ("tumbling", START, END),
        ("inference.events", 2),
    )


def test_an_unknown_model_version_is_refused_by_name(profiles: FileProfileSource) -> None:
    record = _record(profiles)
    record["window"]["model_version"] = "99"
    with pytest.raises(UnknownProfileError) as err:
        record_to_partial(record, profiles)
    _assert_names_the_share(err.value, SHOP[0], "99")
    assert err.value.reason == "unknown_model"


def test_a_sketch_on_another_reference_is_refused(profiles: FileProfileSource) -> None:
    record = _record(profiles)
    record["window"]["sketch"]["reference_id"] = "ref-0000000000000000"
    with pytest.raises(ReferenceMismatchError, match="ref-0000000000000000") as err:
        record_to_partial(record, profiles)
    _assert_names_the_share(err.value, *SHOP)
    assert SHOP_PROFILE.reference_id in str(err.value)
    assert err.value.reason == "reference_mismatch"


def test_a_partial_of_the_other_model_read_as_this_one_is_a_reference_mismatch(
    profiles: FileProfileSource,
) -> None:
    record = _record(profiles, BC)
    record["window"]["model_name"], record["window"]["model_version"] = SHOP
    with pytest.raises(ReferenceMismatchError):
        record_to_partial(record, profiles)


def _grid_too_narrow(r: dict[str, Any]) -> None:
    numeric = r["window"]["sketch"]["numeric"]
    numeric["width"] -= 1
    numeric["counts"] = numeric["counts"][: numeric["features"] * numeric["width"]]


def _counts_too_short(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["numeric"]["counts"].pop()


def _one_category_more(r: dict[str, Any]) -> None:
    categorical = r["window"]["sketch"]["categorical"]
    categorical["sizes"][0] += 1
    categorical["counts"].append(0)


def _no_prediction_part(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["prediction"] = None


def _a_column_short_of_min(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["probability"]["min"].pop()


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (
            _grid_too_narrow,
            f"numeric counts are 3 columns x {W - 1} bins, the profile's grid 3 x {W}",
        ),
        (_counts_too_short, f"numeric.counts has {3 * W - 1} values, expected {3 * W}"),
        (_one_category_more, "categorical counts have [5] slots per column"),
        (_no_prediction_part, "the profile has a prediction part, the sketch has none"),
        (_a_column_short_of_min, "probability.min has 0 values, expected 1"),
    ],
)
def test_counts_that_do_not_fit_the_grid_are_a_shape_mismatch(
    mutate: Any, says: str, profiles: FileProfileSource
) -> None:
    record = _record(profiles)
    mutate(record)
    with pytest.raises(PartialShapeError) as err:
        record_to_partial(record, profiles)
    assert says in str(err.value)
    _assert_names_the_share(err.value, *SHOP)
    assert err.value.reason == "shape_mismatch"


def _negative_bin(r: dict[str, Any]) -> None:
    counts = r["window"]["sketch"]["numeric"]["counts"]
    counts[0], counts[1] = counts[0] - 1 - counts[0], counts[1] + 1 + counts[0]


def _bins_not_adding_up(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["numeric"]["counts"][0] += 1


def _more_seen_than_events(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["event_count"] -= 1


def _min_of_an_empty_column(r: dict[str, Any]) -> None:
    r["window"]["sketch"]["probability"]["min"] = [0.5]
    r["window"]["sketch"]["probability"]["n"] = [0]
    r["window"]["sketch"]["probability"]["counts"] = [0] * len(
        r["window"]["sketch"]["probability"]["counts"]
    )


def _confidence_above_one(r: dict[str, Any]) -> None:
    tally = r["window"]["performance"][0]
    tally["confidence_sum"] = (tally["confidence_count"] + 1) << 32


def _sliding_backwards(r: dict[str, Any]) -> None:
    r["window"]["window_end"] = r["window"]["window_start"]


def _window_kind_without_window(r: dict[str, Any]) -> None:
    r["window"] = None


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (_negative_bin, "numeric.counts holds a negative count"),
        (_bins_not_adding_up, "numeric bin counts do not add up to n"),
        (_more_seen_than_events, "do not fit 49 events"),
        (_min_of_an_empty_column, "probability.min is null where n > 0 or set where n = 0"),
        (_confidence_above_one, "impossible tally"),
        (_sliding_backwards, "window end is not after its start"),
        (_window_kind_without_window, "kind 'window' without its window part"),
    ],
)
def test_impossible_values_are_refused(mutate: Any, says: str, profiles: FileProfileSource) -> None:
    record = _record(profiles)
    mutate(record)
    with pytest.raises(PartialValueError) as err:
        record_to_partial(record, profiles)
    assert says in str(err.value)
    assert "inference.events[2]" in str(err.value)
    assert err.value.reason == "invalid_value"


def test_a_progress_record_for_a_partition_beyond_its_count_is_refused() -> None:
    record = progress_to_record(PartitionProgress(Source("inference.events", 6), 6, None))
    with pytest.raises(PartialValueError, match=r"inference.events\[6\]: partition 6 outside"):
        record_to_partial(_wire(record), FileProfileSource(None))


def test_a_progress_record_claiming_absurdly_many_partitions_is_refused() -> None:
    record = progress_to_record(PartitionProgress(Source("inference.events", 0), 10**9, None))
    with pytest.raises(PartialValueError, match="partition_count 1000000000 is over"):
        record_to_partial(_wire(record), FileProfileSource(None))


def test_a_foreign_dict_is_refused_as_invalid_not_crashed_on() -> None:
    foreign: Any
    for foreign in ({}, {"kind": "window", "source_topic": "t", "source_partition": 0}, []):
        with pytest.raises(PartialValueError, match="DriftPartial"):
            record_to_partial(foreign, FileProfileSource(None))


def test_a_non_finite_bound_is_refused_at_encode_never_changed(
    profiles: FileProfileSource,
) -> None:
    # Records carry no infinity; only an empty column's start values become null. A
    # sketch holding -inf as a minimum (impossible from decoded events) is not silently
    # turned into "no value": the codec refuses it, naming the field.
    partial = _partial(SHOP, profiles, slice(0, 50))
    partial.sketch.numeric.min[1] = -math.inf
    with pytest.raises(RecordValidationError, match=r"window\.sketch\.numeric\.min\[1\]"):
        CODEC.encode(DRIFT_PARTIAL, partial_to_record(partial))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every int leaf of a record (lists and dicts walked)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path] if isinstance(value, int) and not isinstance(value, bool) else []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=hst.data())
def test_any_changed_integer_is_merged_or_refused_with_a_typed_error(
    data: hst.DataObject, profiles: FileProfileSource
) -> None:
    """The merge step's promise: nothing but a PartialRecordError on bad content."""
    record = copy.deepcopy(BASE_RECORD)
    for _ in range(data.draw(hst.integers(1, 3))):
        path = data.draw(hst.sampled_from(_leaves(record)))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(hst.integers(-(2**63), 2**63 - 1) | hst.integers(-3, 300))
    with contextlib.suppress(PartialRecordError):
        record_to_partial(record, profiles)


BASE_RECORD = partial_to_record(
    WindowPartial(
        model=SHOP[0],
        version=SHOP[1],
        kind="sliding",
        start_ms=START,
        end_ms=END,
        source=SOURCE,
        sketch=WindowSketch(SHOP_PROFILE).update(
            SHOP_ROWS[:40],
            categorical=SHOP_CAT[:40],
            predicted=SHOP_PRED[:40],
            probability=SHOP_PROB[:40],
        ),
        performance=WindowPerformance(),
        late_event_count=0,
        ranges=[(0, 39)],
    )
)


@pytest.mark.parametrize(
    "path",
    [
        ("numeric", "mean", 0),
        ("numeric", "m2", 2),
        ("numeric", "max", 0),
        ("probability", "min", 0),
    ],
)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_the_decoders_fast_path_still_refuses_non_finite_doubles(
    path: tuple[str, str, int], bad: float, profiles: FileProfileSource
) -> None:
    # A foreign producer skipping validation: the reader names the field all the same.
    record = partial_to_record(_partial(SHOP, profiles, slice(150, 200)))
    part, field, index = path
    record["window"]["sketch"][part][field][index] = bad
    with pytest.raises(InvalidRecordError, match=rf"window\.sketch\.{part}\.{field}\[{index}\]"):
        CODEC.decode(CODEC.encode(DRIFT_PARTIAL, record, check=False))


def test_the_decoders_fast_path_still_refuses_a_non_finite_statistic(
    profiles: FileProfileSource,
) -> None:
    record = partial_to_record(_partial(SHOP, profiles, slice(0, 50)))
    record["window"]["change_points"][1]["statistic"] = math.nan
    with pytest.raises(InvalidRecordError, match=r"change_points\[1\]\.statistic"):
        CODEC.decode(CODEC.encode(DRIFT_PARTIAL, record, check=False))
