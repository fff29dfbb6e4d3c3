"""Check a record against its schema and Driftline's value rules, naming the bad field.

fastavro's writer also rejects wrong types, but its messages do not say where in a
nested record the problem is, and Avro itself allows NaN and infinity. Driftline does
not: a NaN feature would silently poison every drift statistic of its window, so every
``float``/``double`` in every Driftline record must be finite (a missing value is
``null`` or an absent map entry). This walker enforces both and reports a path such as
``features['age']``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from schemas.exceptions import RecordValidationError

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class _Invalid(Exception):
    """Internal: carries (path, problem) up to :func:`validate`."""

    def __init__(self, path: str, problem: str, right_type: bool = False) -> None:
        self.path = path
        self.problem = problem
        #: The value had the right type but a bad content (NaN, out of range): in a
        #: union, that is the branch the caller meant, so its problem is the one to report.
        self.right_type = right_type


def _named_types(schema: Any, namespace: str, table: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, namespace, table)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            ns = schema.get("namespace", namespace)
            table[schema["name"]] = schema
            table[f"{ns}.{schema['name']}"] = schema
            for field in schema.get("fields", ()):
                _named_types(field["type"], ns, table)
        elif kind == "array":
            _named_types(schema["items"], namespace, table)
        elif kind == "map":
            _named_types(schema["values"], namespace, table)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(schema: Any, value: Any, path: str, named: dict[str, Any]) -> None:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        problems = []
        for branch in schema:
            try:
                _check(branch, value, path, named)
                return
            except _Invalid as exc:
                problems.append(exc)
        # A branch that matched the value's type (a float that is NaN, a record with a bad
        # field) explains the problem better than "matches none of".
        for problem in problems:
            if problem.right_type or problem.path != path:
                raise problem
        names = [b if isinstance(b, str) else b.get("name", b.get("type")) for b in schema]
        raise _Invalid(path, f"{value!r} matches none of {names}")
    kind = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(kind, dict | list):
        _check(kind, value, path, named)
        return
    if kind == "null":
        if value is not None:
            raise _Invalid(path, f"expected null, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _Invalid(path, f"expected a boolean, got {type(value).__name__}")
    elif kind in ("int", "long"):
        low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(path, f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise _Invalid(path, f"{value} is out of range for an Avro {kind}", True)
    elif kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Invalid(path, f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise _Invalid(path, f"{value} is not allowed: numbers must be finite", True)
    elif kind == "string":
        if not isinstance(value, str):
            raise _Invalid(path, f"expected a string, got {type(value).__name__}")
    elif kind in ("bytes", "fixed"):
        if not isinstance(value, bytes | bytearray):
            raise _Invalid(path, f"expected bytes, got {type(value).__name__}")
    elif kind == "enum":
        if value not in schema["symbols"]:
            raise _Invalid(path, f"{value!r} is not one of {schema['symbols']}", True)
    elif kind == "array":
        if not isinstance(value, list | tuple):
            raise _Invalid(path, f"expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]", named)
    elif kind == "map":
        if not isinstance(value, Mapping):
            raise _Invalid(path, f"expected a mapping, got {type(value).__name__}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(path, f"map keys must be strings, got {key!r}")
            _check(schema["values"], item, f"{path}[{key!r}]", named)
    elif kind == "record":
        _check_record(schema, value, path, named)
    else:  # pragma: no cover - every Avro type is handled above
        raise _Invalid(path, f"unsupported schema type {kind!r}")


def _check_record(schema: dict[str, Any], value: Any, path: str, named: dict[str, Any]) -> None:
    if not isinstance(value, Mapping):
        raise _Invalid(path, f"expected a record (mapping), got {type(value).__name__}")
    fields = schema["fields"]
    known = {f["name"] for f in fields}
    for key in value:
        if key not in known:
            raise _Invalid(_join(path, str(key)), "unknown field (not in the schema)")
    for field in fields:
        name = field["name"]
        if name not in value:
            if "default" in field:
                continue
            raise _Invalid(_join(path, name), "missing required field")
        _check(field["type"], value[name], _join(path, name), named)


def validate(record_type: str, schema: dict[str, Any], value: Any) -> None:
    """Check ``value`` against the raw (as written) Avro ``schema`` of ``record_type``.

    :raises RecordValidationError: naming the first bad field and what is wrong with it.
    """
    named: dict[str, Any] = {}
    _named_types(schema, schema.get("namespace", ""), named)
    try:
        _check(schema, value, "", named)
    except _Invalid as exc:
        raise RecordValidationError(record_type, exc.path or "<record>", exc.problem) from None
