"""Online feature lookups: ``POST /features/online`` and the ``/predict`` join read here.

The views are declared in the feature views file (:mod:`schemas.feature_views`) and
materialised in Redis by ``driftline features run`` (:mod:`schemas.feature_store`).
Answers follow the response of Feast's feature server (``/get-online-features``):
column-oriented ``results``, one per requested name (entity keys first), each with
``values``, ``statuses`` and ``event_timestamps`` per entity row.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.feature_store import OnlineValue, read_online
from schemas.feature_views import FeatureView, FeatureViews
from serving.exceptions import ClientInputError

#: Feast's timestamp for values that have none (entity keys, absent entities).
EPOCH = "1970-01-01T00:00:00Z"
MAX_ENTITY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class FeatureRef:
    """``view:feature`` parsed."""

    view: FeatureView
    feature: str

    @property
    def ref(self) -> str:
        return f"{self.view.name}:{self.feature}"


def _iso(ms: int | None) -> str:
    if ms is None:
        return EPOCH
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class OnlineFeatures:
    """The declared views and a lazily opened Redis client (None: no Redis configured)."""

    def __init__(self, views: FeatureViews, redis_url: str | None) -> None:
        self.views = views
        self.redis_url = redis_url
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        """The Redis client; 503 when serving runs without Redis."""
        if self.redis_url is None:
            raise ClientInputError(503, "feature_store_unavailable", "serving has no Redis")
        with self._lock:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
                )
            return self._client

    def parse_refs(self, refs: Sequence[str]) -> list[FeatureRef]:
        """Each ``view:feature``; an unknown one is a 400 listing every known ref."""
        known = self.views.refs()
        out: list[FeatureRef] = []
        unknown: list[str] = []
        for ref in refs:
            view_name, _, feature = ref.partition(":")
            view = self.views.get(view_name)
            if view is None or not any(f.name == feature for f in view.features):
                unknown.append(ref)
                continue
            out.append(FeatureRef(view, feature))
        if unknown:
            raise ClientInputError(
                400,
                "unknown_feature_ref",
                f"unknown feature refs {unknown}; known: {known}",
                "feature_refs",
            )
        return out

    def lookup(
        self, refs: Sequence[FeatureRef], entities: Sequence[Mapping[str, str]]
    ) -> list[list[OnlineValue]]:
        """``values[r][i]``: ref ``r`` for entity row ``i`` (None values for unknown entities).

        :raises ClientInputError: 503 when Redis does not answer.
        """
        client = self.client()
        by_view: dict[str, list[int]] = {}
        for r, ref in enumerate(refs):
            by_view.setdefault(ref.view.name, []).append(r)
        out: list[list[OnlineValue]] = [[] for _ in refs]
        try:
            for indices in by_view.values():
                view = refs[indices[0]].view
                names = [refs[r].feature for r in indices]
                rows = read_online(client, view, [e[view.entity] for e in entities], names)
                for k, r in enumerate(indices):
                    out[r] = [row[names[k]] for row in rows]
        except redis.RedisError as exc:
            raise ClientInputError(
                503, "feature_store_unavailable", f"Redis did not answer: {type(exc).__name__}"
            ) from None
        return out


def entity_rows(
    rows: Sequence[Mapping[str, Any]], refs: Sequence[FeatureRef]
) -> tuple[list[str], list[dict[str, str]]]:
    """The entity key names the refs need and each row's keys as strings.

    :raises ClientInputError: 400 for a row without a needed key or with a bad value.
    """
    keys = list(dict.fromkeys(ref.view.entity for ref in refs))
    out: list[dict[str, str]] = []
    for i, row in enumerate(rows):
        parsed: dict[str, str] = {}
        for key in keys:
            if key not in row:
                raise ClientInputError(
                    400, "missing_entity_key", f"row {i} has no {key!r}", f"entity_rows[{i}]"
                )
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise ClientInputError(
                    400,
                    "invalid_entity_key",
                    f"{key!r} must be a string or an integer, not {value!r}",
                    f"entity_rows[{i}].{key}",
                )
            text = str(value)
            if not text or len(text) > MAX_ENTITY_LENGTH:
                raise ClientInputError(
                    400,
                    "invalid_entity_key",
                    f"{key!r} must have 1-{MAX_ENTITY_LENGTH} characters",
                    f"entity_rows[{i}].{key}",
                )
            parsed[key] = text
        out.append(parsed)
    return keys, out


def feast_response(
    keys: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    refs: Sequence[FeatureRef],
    values: Sequence[Sequence[OnlineValue]],
) -> dict[str, Any]:
    """Feast's ``get-online-features`` answer: entity keys, then one column per ref."""
    results: list[dict[str, Any]] = [
        {
            "values": [row[key] for row in rows],
            "statuses": ["PRESENT"] * len(rows),
            "event_timestamps": [EPOCH] * len(rows),
        }
        for key in keys
    ]
    for column in values:
        results.append(
            {
                "values": [v.value for v in column],
                "statuses": [
                    "PRESENT"
                    if v.value is not None
                    else ("NOT_FOUND" if v.event_time_ms is None else "NULL_VALUE")
                    for v in column
                ],
                "event_timestamps": [_iso(v.event_time_ms) for v in column],
            }
        )
    return {
        "metadata": {"feature_names": [*keys, *(ref.ref for ref in refs)]},
        "results": results,
    }


def join_online(service: OnlineFeatures, refs_text: Sequence[str], body: Any) -> Any:
    """``body`` with the model's online features filled in for each row's ``entity_id``.

    A row's own value for a feature is kept (explicit beats looked up). Only rows whose
    ``features`` is an object and that lack some online feature are looked up; a body
    ``parse_predict`` would refuse anyway is returned as is, for it to say why.

    :raises ClientInputError: 422 when a row needs an online feature but has no
        ``entity_id`` or the entity has no value; 503 when Redis does not answer.
    """
    if not isinstance(body, dict):
        return body
    refs = service.parse_refs(refs_text)
    names = [ref.feature for ref in refs]
    single = "features" in body
    rows = [body] if single else body.get("instances")
    if not isinstance(rows, list):
        return body
    wanted: list[tuple[int, dict[str, Any], str]] = []
    for i, row in enumerate(rows):
        where = "" if single else f"instances[{i}]."
        if not isinstance(row, dict) or not isinstance(row.get("features"), dict):
            if isinstance(row, dict) and isinstance(row.get("features"), list):
                raise ClientInputError(
                    422, "features_by_name_required",
                    f"this model joins online features {names}: give features as an object "
                    "of name: number", f"{where}features",
                )  # fmt: skip
            continue
        if all(n in row["features"] for n in names):
            continue
        entity = row.get("entity_id", body.get("entity_id") if not single else None)
        if not isinstance(entity, str) or not entity:
            raise ClientInputError(
                422, "entity_id_required",
                f"this model joins online features {names} by entity_id; the row has none",
                f"{where}entity_id",
            )  # fmt: skip
        wanted.append((i, row, entity))
    if not wanted:
        return body
    keyed = [{ref.view.entity: entity for ref in refs} for _, _, entity in wanted]
    values = service.lookup(refs, keyed)
    out = dict(body)
    new_rows = list(rows)
    for k, (i, row, entity) in enumerate(wanted):
        features = dict(row["features"])
        for r, ref in enumerate(refs):
            if ref.feature in features:
                continue
            value = values[r][k].value
            if value is None:
                raise ClientInputError(
                    422, "online_feature_missing",
                    f"online feature {ref.ref} has no value for entity {entity!r}",
                    ("" if single else f"instances[{i}].") + "entity_id",
                )  # fmt: skip
            features[ref.feature] = value
        new_rows[i] = {**row, "features": features}
    if single:
        return new_rows[0]
    out["instances"] = new_rows
    return out
