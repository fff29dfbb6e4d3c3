"""Parse and check a /predict body, naming exactly what is wrong and where.

Hand-written rather than a pydantic model because the errors are the product here: a
wrong feature count, the unknown and the missing feature names (all of them, not the
first), ``NaN``/``Infinity`` (which Python's JSON parser accepts), each with a path such
as ``instances[2].features['mean radius']``. Every error is a
:class:`~serving.exceptions.ClientInputError` that the endpoint turns into a 4xx and an
InferenceEvent with ``outcome=client_error``.

Body forms (``model_name`` optional, defaulting to the served model):

- one row: ``{"features": [30 numbers] | {name: number}, "request_id"?, "entity_id"?}``
- a batch: ``{"instances": [{"features": ..., "request_id"?, "entity_id"?}, ...]}``
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.exceptions import ClientInputError

_TOP_KEYS = frozenset({"model_name", "features", "instances", "request_id", "entity_id"})
_ROW_KEYS = frozenset({"features", "request_id", "entity_id"})
MAX_ID_LENGTH = 200


class _NonFinite:
    """Stands for a ``NaN``/``Infinity`` literal until the checker reports where it was."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


@dataclass
class Row:
    """One row to predict: values in the model's feature order."""

    values: list[float]
    request_id: str
    entity_id: str | None = None


@dataclass
class PredictCall:
    """A checked /predict body."""

    model_name: str
    rows: list[Row]
    batch: bool


@dataclass
class Partial:
    """What is known of a request even when it is wrong, for its client_error event."""

    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    model_name: str | None = None
    entity_id: str | None = None


def decode_json(raw: bytes) -> Any:
    """The JSON value of ``raw``; NaN/Infinity literals become markers, reported later.

    :raises ClientInputError: 400 ``malformed_json`` with line, column and offset.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientInputError(
            400, "malformed_json", f"body is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        return json.loads(text, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        raise ClientInputError(
            400,
            "malformed_json",
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})",
        ) from None


def partial_of(body: Any, request_id: str) -> Partial:
    """request_id, model_name and entity_id if the body has usable ones.

    :param request_id: the id to use when the body has no usable one.
    """
    found = Partial(request_id)
    if isinstance(body, dict):
        rid, model, entity = body.get("request_id"), body.get("model_name"), body.get("entity_id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LENGTH:
            found.request_id = rid
        if isinstance(model, str) and model:
            found.model_name = model[:MAX_ID_LENGTH]
        if isinstance(entity, str) and len(entity) <= MAX_ID_LENGTH:
            found.entity_id = entity
    return found


def parse_predict(
    body: Any,
    *,
    default_model: str,
    features_of: dict[str, Sequence[str]],
    max_rows: int,
    request_id: str,
) -> PredictCall:
    """Check a decoded body against the served models.

    :param features_of: each served model's feature names, in order.
    :param request_id: the id of a one-row request without its own (batch rows without
        one get ``<request_id>:<index>``).
    :raises ClientInputError: 422 for a wrong body, 404 for an unknown model.
    """
    if not isinstance(body, dict):
        raise ClientInputError(
            422, "invalid_body", f"expected a JSON object, got {_kind(body)}", "body"
        )
    unknown = sorted(set(body) - _TOP_KEYS)
    if unknown:
        raise ClientInputError(
            422, "unknown_field",
            f"unknown fields {unknown}; allowed: {sorted(_TOP_KEYS)}", "body",
        )  # fmt: skip
    model_name = body.get("model_name", default_model)
    if not isinstance(model_name, str) or not model_name:
        raise ClientInputError(
            422, "invalid_model_name", "model_name must be a non-empty string", "model_name"
        )
    names = features_of.get(model_name)
    if names is None:
        raise ClientInputError(
            404, "unknown_model",
            f"unknown model {model_name!r}; served: {sorted(features_of)}", "model_name",
        )  # fmt: skip
    has_features, has_instances = "features" in body, "instances" in body
    if has_features == has_instances:
        raise ClientInputError(
            422, "invalid_body",
            "give exactly one of 'features' (one row) or 'instances' (a batch)", "body",
        )  # fmt: skip
    if has_features:
        row = _row(body, "", names, request_id)
        return PredictCall(model_name, [row], batch=False)
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise ClientInputError(
            422, "invalid_instances", "instances must be a non-empty list of rows", "instances"
        )
    if len(instances) > max_rows:
        raise ClientInputError(
            422, "too_many_rows",
            f"{len(instances)} rows; at most {max_rows} per call", "instances",
        )  # fmt: skip
    rows = []
    for i, item in enumerate(instances):
        where = f"instances[{i}]"
        if not isinstance(item, dict):
            raise ClientInputError(
                422, "invalid_instance", f"expected an object, got {_kind(item)}", where
            )
        extra = sorted(set(item) - _ROW_KEYS)
        if extra:
            raise ClientInputError(
                422, "unknown_field", f"unknown fields {extra}; allowed: {sorted(_ROW_KEYS)}",
                where,
            )  # fmt: skip
        if "features" not in item:
            raise ClientInputError(422, "missing_features", "row has no 'features'", where)
        rows.append(_row(item, where + ".", names, f"{request_id}:{i}"))
    return PredictCall(model_name, rows, batch=True)


def _row(obj: dict[str, Any], prefix: str, names: Sequence[str], default_id: str) -> Row:
    request_id = _optional_id(obj, "request_id", prefix) or default_id
    entity_id = _optional_id(obj, "entity_id", prefix)
    return Row(_values(obj["features"], prefix + "features", names), request_id, entity_id)


def _optional_id(obj: dict[str, Any], key: str, prefix: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ClientInputError(
            422, f"invalid_{key}",
            f"{key} must be a string of 1 to {MAX_ID_LENGTH} characters", prefix + key,
        )  # fmt: skip
    return value


def _values(features: Any, where: str, names: Sequence[str]) -> list[float]:
    if isinstance(features, list):
        if len(features) != len(names):
            raise ClientInputError(
                422, "wrong_feature_count",
                f"expected {len(names)} features, got {len(features)}", where,
            )  # fmt: skip
        return [_number(v, f"{where}[{i}]") for i, v in enumerate(features)]
    if isinstance(features, dict):
        known = set(names)
        unknown = sorted(k for k in features if k not in known)
        missing = [n for n in names if n not in features]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown feature names {unknown}")
            if missing:
                parts.append(f"missing feature names {missing}")
            raise ClientInputError(
                422,
                "unknown_features" if unknown else "missing_features",
                "; ".join(parts),
                where,
            )
        return [_number(features[n], f"{where}[{n!r}]") for n in names]
    raise ClientInputError(
        422, "invalid_features",
        f"features must be a list of {len(names)} numbers or an object by feature name, "
        f"got {_kind(features)}", where,
    )  # fmt: skip


def _number(value: Any, where: str) -> float:
    if isinstance(value, _NonFinite):
        raise ClientInputError(
            422, "non_finite", f"{value.literal} is not allowed: numbers must be finite", where
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientInputError(422, "non_numeric", f"expected a number, got {_kind(value)}", where)
    try:
        number = float(value)
    except OverflowError:  # an integer literal too large for a double
        number = math.inf
    if not math.isfinite(number):
        raise ClientInputError(
            422, "non_finite", f"{value!r} is out of range: numbers must be finite", where
        )
    return number


def _kind(value: Any) -> str:
    if isinstance(value, _NonFinite):
        return value.literal
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )
