"""DriftPartial wire format: encoded size and encode/decode time of a 30-feature sketch.

The shipped format (``schemas/avro/drift_partial.avsc``) carries the sketch as flattened
Avro arrays (longs for counts, doubles for moments, nullable doubles for min/max). Two
alternatives are measured next to it on the same partial: every array as little-endian
numpy bytes (``<i8``/``<f8``), and counts as long arrays with the floats as ``<f8``
bytes. Each goes through the steps a producer and the merge step pay: encode is the
project's validator (which names a bad field) and fastavro's writer; decode is
fastavro's reader and the codec's value checks (``check_decoded``, whose DriftPartial
fast path sums each double array). Sketches of 100, 1,000 and 100,000 breast-cancer
events (30 numeric features, 20 bins, plus prediction and probability parts). Medians
of 5 rounds of 200 records; sizes are Avro bodies (the framing adds 10 bytes).
"""

from __future__ import annotations

import copy
import functools
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastavro import schemaless_writer
from sklearn.datasets import load_breast_cancer

from schemas.catalog import DRIFT_PARTIAL, SchemaVersion, fingerprint_of, load_catalog, parse
from schemas.codec import check_decoded, read_body
from schemas.validation import validate
from stream.partials import Source, WindowPartial
from stream.partials_codec import partial_to_record, record_to_partial
from stream.performance import WindowPerformance
from stream.stats import ReferenceProfile, WindowSketch

ROUNDS, REPEATS = 5, 200
_FLOATS = ("mean", "m2", "min", "max")


def _bytes_schema(raw: dict[str, Any], *, counts_too: bool) -> dict[str, Any]:
    """The DriftPartial schema with NumericCounts/CategoryCounts arrays as ``bytes``."""
    out = copy.deepcopy(raw)
    window = next(f for f in out["fields"] if f["name"] == "window")["type"][1]
    sketch = next(f for f in window["fields"] if f["name"] == "sketch")["type"]
    for field in sketch["fields"]:
        if isinstance(field["type"], dict) and field["type"].get("type") == "record":
            for sub in field["type"]["fields"]:
                is_float = sub["name"] in _FLOATS
                if sub["name"] not in ("features", "width", "sizes") and (is_float or counts_too):
                    sub["type"] = "bytes"
    return out


def _as_bytes(record: dict[str, Any], partial: WindowPartial, *, counts_too: bool) -> None:
    sketch = record["window"]["sketch"]
    parts = {"numeric": partial.sketch.numeric, "probability": partial.sketch.probability}
    for name, counts in parts.items():
        if counts is None:
            continue
        for field in _FLOATS:
            sketch[name][field] = np.asarray(getattr(counts, field), "<f8").tobytes()
        if counts_too:
            for field in ("counts", "missing", "n"):
                sketch[name][field] = np.asarray(getattr(counts, field), "<i8").tobytes()
    if counts_too:
        for name in ("categorical", "prediction"):
            if sketch[name] is not None:
                for field in ("counts", "missing"):
                    sketch[name][field] = np.asarray(sketch[name][field], "<i8").tobytes()


def _encode(
    partial: WindowPartial, raw: dict[str, Any], parsed: dict[str, Any], counts_too: bool | None
) -> bytes:
    """What a producer pays: record, bytes fields (alternatives), validation, writer."""
    record = partial_to_record(partial)
    if counts_too is not None:
        _as_bytes(record, partial, counts_too=counts_too)
    validate(DRIFT_PARTIAL, raw, record)
    out = io.BytesIO()
    schemaless_writer(out, parsed, record)
    return out.getvalue()


def _decode(body: bytes, version: SchemaVersion) -> dict[str, Any]:
    """What the merge step's codec pays: reader and its value checks (``check_decoded``)."""
    value = read_body(body, version.parsed, None)
    check_decoded(version, value)
    return value  # type: ignore[no-any-return]


def _median_us(action: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(REPEATS):
            action()
        times.append((time.perf_counter() - started) / REPEATS * 1e6)
    return statistics.median(times)


class _Profiles:
    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile

    def get(self, model: str, version: str) -> ReferenceProfile | None:
        return self.profile


def main() -> None:
    data = load_breast_cancer()
    x, names = data.data, list(data.feature_names)
    profile = ReferenceProfile.build(x, names, predicted=data.target, probability=x[:, 0] / 30)
    raw = load_catalog().current(DRIFT_PARTIAL).raw
    rng = np.random.default_rng(0)
    print(
        "| events | encoding | body bytes | encode + validate (us) | decode + validate (us) |"
        "\n|---:|---|---:|---:|---:|"
    )
    for events in (100, 1_000, 100_000):
        rows = rng.integers(0, len(x), events)
        sketch = WindowSketch(profile).update(
            x[rows] * rng.normal(1, 0.05, (events, 30)),
            predicted=data.target[rows],
            probability=x[rows, 0] / 30,
        )
        performance = WindowPerformance()
        partial = WindowPartial(
            "m", "1", "tumbling", 0, 60_000, Source("t", 0), sketch, performance, 0, [(0, 9)]
        )
        for label, schema_raw, counts_too in (
            ("Avro arrays (shipped)", raw, None),
            ("numpy bytes <i8/<f8", _bytes_schema(raw, counts_too=True), True),
            ("long arrays + <f8 bytes", _bytes_schema(raw, counts_too=False), False),
        ):
            canonical, fingerprint = fingerprint_of(schema_raw)
            parsed = parse(schema_raw)
            version = SchemaVersion(
                DRIFT_PARTIAL, 1, schema_raw, parsed, canonical, fingerprint, current=True
            )
            encode = functools.partial(_encode, partial, schema_raw, parsed, counts_too)
            body = encode()
            decode = functools.partial(_decode, body, version)
            print(
                f"| {events:,} | {label} | {len(body):,} | {_median_us(encode):,.0f} "
                f"| {_median_us(decode):,.0f} |"
            )
        shipped = load_catalog().current(DRIFT_PARTIAL)
        value = _decode(_encode(partial, raw, shipped.parsed, None), shipped)
        rebuild = _median_us(functools.partial(record_to_partial, value, _Profiles(profile)))
        print(f"| {events:,} | shipped: record_to_partial after decode | | | {rebuild:,.0f} |")
