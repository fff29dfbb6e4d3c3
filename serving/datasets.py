"""Named datasets: one registry for training, references and pipelines.

Built in: ``training`` (the rows the baseline is fitted on), ``validation`` (the fixed
held-out split) and ``reference`` (what the champion was trained on: the training
split). Any other dataset is registered under an id from CSV text or JSON rows
(``POST /references``, ``driftline reference add ID FILE``) and stored as
``<DRIFTLINE_DATA_DIR>/datasets/<id>.csv``, so every serving replica and the CLI on the
same data dir see the same datasets.

Ids are 1-64 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit (so an id
is always a plain file name: no path, no hidden file). Values must be numbers; empty
cells (CSV) and ``null`` (JSON) are missing values; infinities are refused. Every
mistake is a :class:`~serving.exceptions.ClientInputError` saying exactly what and where.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.exceptions import ClientInputError

BUILT_IN = ("reference", "training", "validation")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def validate_id(dataset_id: str) -> str:
    """``dataset_id`` if it is a valid id, else a 422 saying why."""
    if not isinstance(dataset_id, str) or not _ID.fullmatch(dataset_id):
        raise ClientInputError(
            422,
            "invalid_dataset_id",
            f"dataset id {dataset_id!r} is not valid: 1-64 characters of letters, digits, "
            "'.', '_' or '-', starting with a letter or digit",
            "id",
        )
    return dataset_id


def parse_csv(text: str, max_rows: int) -> pd.DataFrame:
    """A header line of column names, then rows of numbers (empty cell = missing)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise ClientInputError(422, "empty_dataset", "the CSV has no header line", "csv")
        _check_columns([name.strip() for name in header], "csv line 1")
        for fields in reader:
            if fields and len(fields) != len(header):
                raise ClientInputError(
                    422,
                    "malformed_csv",
                    f"line {reader.line_num} has {len(fields)} fields; the header has "
                    f"{len(header)}",
                    f"csv line {reader.line_num}",
                )
    except csv.Error as exc:
        message = f"the CSV cannot be read: {exc}"
        raise ClientInputError(422, "malformed_csv", message, "csv") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise ClientInputError(
            422, "malformed_csv", f"the CSV cannot be read: {exc}", "csv"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    numbers = {}
    for column in frame.columns:
        cells = frame[column].str.strip()
        values = pd.to_numeric(cells.replace("", np.nan), errors="coerce")
        bad = values.isna() & (cells != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ClientInputError(
                422,
                "non_numeric",
                f"column {column!r} must hold numbers: {cells.iloc[row]!r} on line {row + 2}",
                f"csv line {row + 2}",
            )
        numbers[column] = values.astype(np.float64)
    return _checked(pd.DataFrame(numbers, columns=list(frame.columns)), max_rows, "csv")


def parse_rows(rows: Sequence[Any], max_rows: int) -> pd.DataFrame:
    """JSON rows: objects of column name to number or ``null``; columns may differ by row."""
    columns: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ClientInputError(
                422, "invalid_row", f"row {i} must be an object of column: number", f"rows[{i}]"
            )
        for name, value in row.items():
            where = f"rows[{i}][{name!r}]"
            if not isinstance(name, str) or not name.strip():
                raise ClientInputError(
                    422, "invalid_column", "column names must be non-empty", where
                )
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ClientInputError(
                    422, "non_numeric", f"{value!r} is not a number (null = missing)", where
                )
            columns.setdefault(name, None)
    names = list(columns)
    matrix = [[_cell(row.get(name)) for name in names] for row in rows]
    frame = pd.DataFrame(matrix, columns=names, dtype=np.float64)
    return _checked(frame, max_rows, "rows")


def _cell(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _check_columns(names: list[str], where: str) -> None:
    if any(not n for n in names):
        raise ClientInputError(422, "invalid_column", "a column name is empty", where)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ClientInputError(422, "duplicate_column", f"column {name!r} appears twice", where)
        seen.add(name)


def _checked(frame: pd.DataFrame, max_rows: int, where: str) -> pd.DataFrame:
    if frame.empty or len(frame.columns) == 0:
        raise ClientInputError(422, "empty_dataset", "the dataset has no rows", where)
    if len(frame) > max_rows:
        raise ClientInputError(
            422, "too_many_rows", f"{len(frame)} rows; at most {max_rows}", where
        )
    if all(c == "target" for c in frame.columns):
        message = "the dataset has no feature column (only 'target', the label)"
        raise ClientInputError(422, "no_features", message, where)
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise ClientInputError(422, "empty_column", f"columns with no value: {empty}", where)
    values = frame.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        row, col = (int(i) for i in np.argwhere(infinite)[0])
        raise ClientInputError(
            422,
            "non_finite",
            f"column {frame.columns[col]!r} row {row} is infinite: numbers must be finite",
            where,
        )
    return frame


class DatasetStore:
    """Registered datasets as ``<root>/<id>.csv``, plus the built-in ids.

    :param root: ``<DRIFTLINE_DATA_DIR>/datasets``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> DatasetStore:
        return cls(data_dir / "datasets")

    def path(self, dataset_id: str) -> Path:
        return self.root / f"{validate_id(dataset_id)}.csv"

    def registered(self) -> list[str]:
        """Ids registered from CSV or JSON (not the built-ins)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.csv") if _ID.fullmatch(p.stem))

    def ids(self) -> list[str]:
        """Every known id, built-ins first."""
        return [*sorted(BUILT_IN), *self.registered()]

    def save(self, dataset_id: str, frame: pd.DataFrame, replace: bool = False) -> Path:
        """Store ``frame`` under ``dataset_id`` (atomically: readers see old or new).

        :raises ClientInputError: 409 for a built-in id, or an existing id without
            ``replace``.
        """
        validate_id(dataset_id)
        if dataset_id in BUILT_IN:
            raise ClientInputError(
                409, "reserved_dataset_id", f"{dataset_id!r} is a built-in dataset", "id"
            )
        path = self.path(dataset_id)
        if path.exists() and not replace:
            raise ClientInputError(
                409,
                "dataset_exists",
                f"dataset {dataset_id!r} is already registered; replace it explicitly",
                "id",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="") as handle:
                frame.to_csv(handle, index=False, float_format="%.17g")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def load(self, dataset_id: str) -> pd.DataFrame | None:
        """A registered dataset's rows; None when no such id is registered."""
        if not _ID.fullmatch(dataset_id):
            return None
        path = self.root / f"{dataset_id}.csv"
        if not path.is_file():
            return None
        return pd.read_csv(path, dtype=np.float64)


def parse_file(path: Path, max_bytes: int, max_rows: int) -> pd.DataFrame:
    """A dataset file: ``.json`` (a list of rows, or ``{"rows": [...]}``), else CSV.

    :raises ClientInputError: too large, not UTF-8, not JSON, or any parsing error above.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise ClientInputError(
            413, "file_too_large", f"{path} has {size} bytes; at most {max_bytes}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ClientInputError(400, "not_utf8", f"{path} is not UTF-8 text: {exc}") from None
    if path.suffix.lower() != ".json":
        return parse_csv(text, max_rows)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientInputError(400, "malformed_json", f"{path} is not JSON: {exc}") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ClientInputError(
            422, "invalid_body", f'{path} must hold a list of rows or {{"rows": [...]}}'
        )
    return parse_rows(rows, max_rows)
