"""Feature views: which per-entity aggregates are materialised, declared in one TOML file.

A contract between the features processor (``driftline features run``, which writes the
views to Redis) and serving (``POST /features/online`` reads them; ``/predict`` joins
them in), so it lives in ``schemas``. The file (``DRIFTLINE_FEATURES_VIEWS_PATH``,
default the packaged ``schemas/feature_views.toml``) looks like::

    [[views]]
    name = "user_stats"
    entity = "user_id"          # the join key of /features/online's entity_rows
    window = "7d"               # event-time window of every aggregate
    bucket = "1h"               # partial-aggregate granularity (window is a multiple)
    models = ["fraud"]          # optional: only these models' InferenceEvents

    [[views.features]]
    name = "transaction_count_7d"
    aggregate = "count"

    [[views.features]]
    name = "avg_transaction_amount"
    aggregate = "mean"
    field = "amount"            # a numeric feature of the InferenceEvent

The entity of an event is its ``entity_id`` (``entity`` only names the key callers use).
A model may declare the online features ``/predict`` joins in by ``entity_id``::

    [[models]]
    name = "fraud"
    online_features = ["user_stats:avg_transaction_amount"]  # fills feature
                                                             # "avg_transaction_amount"

``docs/features.md`` explains windows, buckets, TTL and the Redis layout.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.exceptions import ConfigurationError
from schemas.topics import INFERENCE_EVENTS

#: The packaged example views (breast-cancer features per entity).
DEFAULT_VIEWS_PATH = Path(__file__).with_name("feature_views.toml")

Aggregate = Literal["count", "sum", "mean", "min", "max", "last"]
AGGREGATES: tuple[str, ...] = ("count", "sum", "mean", "min", "max", "last")
#: Most buckets one window may hold (each is a small partial per field and entity).
MAX_BUCKETS = 1000

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class FeatureViewError(ConfigurationError):
    """The feature views file cannot be read or declares something impossible (says what)."""


def parse_duration(value: str | int | float) -> float:
    """Seconds of ``"7d"``, ``"1h"``, ``"30m"``, ``"90s"``, ``"500ms"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration like '7d', '1h', '30m' or '90s'")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return seconds


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} {value!r}: 1-128 characters of letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


class FeatureSpec(BaseModel):
    """One aggregate of a view: ``count`` of events, or ``aggregate`` of a numeric ``field``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    aggregate: Aggregate
    field: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "feature name")

    @model_validator(mode="after")
    def _field_given(self) -> FeatureSpec:
        if self.aggregate == "count" and self.field is not None:
            raise ValueError(f"feature {self.name!r}: 'count' counts events and takes no field")
        if self.aggregate != "count" and not self.field:
            raise ValueError(f"feature {self.name!r}: '{self.aggregate}' needs a 'field'")
        return self


class FeatureView(BaseModel):
    """A named set of per-entity aggregates over one event-time window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    entity: str = Field(default="entity_id", description="Join key name in entity_rows.")
    input_topic: str = Field(default=INFERENCE_EVENTS.name, description="Unprefixed topic.")
    models: tuple[str, ...] = Field(default=(), description="Only these models; empty: all.")
    window_s: float = Field(description="Event-time window of every aggregate, seconds.")
    bucket_s: float = Field(description="Granularity of the mergeable partials, seconds.")
    ttl_s: float = Field(description="Redis expiry of an entity's hash after its last write.")
    features: tuple[FeatureSpec, ...]

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("window", "bucket", "ttl"):
            if key in data:
                data[f"{key}_s"] = parse_duration(data.pop(key))
        data.setdefault("window_s", 7 * 86400.0)
        data.setdefault("bucket_s", 3600.0)
        data.setdefault("ttl_s", data["window_s"] + data["bucket_s"])
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "view name")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureView:
        buckets = self.window_s / self.bucket_s
        if self.bucket_ms * round(buckets) != self.window_ms or round(buckets) < 1:
            raise ValueError(
                f"view {self.name!r}: window ({self.window_s:g} s) must be a whole number "
                f"of buckets ({self.bucket_s:g} s)"
            )
        if round(buckets) > MAX_BUCKETS:
            raise ValueError(
                f"view {self.name!r}: {round(buckets)} buckets per window; at most "
                f"{MAX_BUCKETS} (use a larger bucket)"
            )
        if not self.features:
            raise ValueError(f"view {self.name!r} declares no features")
        names = [f.name for f in self.features]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"view {self.name!r}: features named twice: {twice}")
        return self

    @cached_property
    def window_ms(self) -> int:
        return round(self.window_s * 1000)

    @cached_property
    def bucket_ms(self) -> int:
        return round(self.bucket_s * 1000)

    @property
    def fields(self) -> tuple[str, ...]:
        """The numeric fields the aggregates read, each once, in declaration order."""
        return tuple(dict.fromkeys(f.field for f in self.features if f.field is not None))

    def refs(self) -> list[str]:
        """``view:feature`` of every feature."""
        return [f"{self.name}:{f.name}" for f in self.features]

    def accepts(self, model: str) -> bool:
        """Whether events of ``model`` feed this view."""
        return not self.models or model in self.models


class ModelFeatures(BaseModel):
    """Online features a served model needs, joined into ``/predict`` by ``entity_id``.

    Each ref ``view:feature`` fills the model's input feature named ``feature``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Registered model name.")
    online_features: tuple[str, ...] = Field(min_length=1)


class FeatureViews(BaseModel):
    """Every declared view; all read the same input topic (one processor per topic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    views: tuple[FeatureView, ...] = ()
    models: tuple[ModelFeatures, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> FeatureViews:
        names = [v.name for v in self.views]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"views named twice: {twice}")
        topics = sorted({v.input_topic for v in self.views})
        if len(topics) > 1:
            raise ValueError(
                f"views read different topics {topics}: run one processor per topic, each "
                "with its own views file"
            )
        known = set(self.refs())
        for model in self.models:
            unknown = [r for r in model.online_features if r not in known]
            if unknown:
                raise ValueError(
                    f"model {model.name!r} needs unknown feature refs {unknown}; known: "
                    f"{sorted(known)}"
                )
            names = [r.partition(":")[2] for r in model.online_features]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"model {model.name!r} joins two features named {twice}")
        return self

    def online_features_of(self, model: str) -> tuple[str, ...]:
        """The refs ``model`` declares (empty: it needs none)."""
        found = next((m for m in self.models if m.name == model), None)
        return () if found is None else found.online_features

    def __iter__(self) -> Iterator[FeatureView]:  # type: ignore[override]
        return iter(self.views)

    def __len__(self) -> int:
        return len(self.views)

    def get(self, name: str) -> FeatureView | None:
        return next((v for v in self.views if v.name == name), None)

    def refs(self) -> list[str]:
        """Every known ``view:feature`` reference, sorted."""
        return sorted(ref for view in self.views for ref in view.refs())

    @property
    def input_topic(self) -> str:
        return self.views[0].input_topic if self.views else INFERENCE_EVENTS.name


def load_views(path: Path | None = None) -> FeatureViews:
    """The views of ``path`` (default :data:`DEFAULT_VIEWS_PATH`).

    :raises FeatureViewError: unreadable TOML or an invalid view, naming file and problem.
    """
    path = path or DEFAULT_VIEWS_PATH
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FeatureViewError(f"feature views file {path}: {exc}") from None
    try:
        return FeatureViews.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeatureViewError(
            f"feature views file {path}: {where + ': ' if where else ''}{first['msg']}"
        ) from None
