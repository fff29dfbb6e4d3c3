"""Read a CSV of training data column by column (the standard library's csv module).

Kept apart from the profile so the statistics stay free of I/O except this one reader;
pandas would add a large dependency for what a header and a loop do here.
"""

from __future__ import annotations

import csv
from pathlib import Path

from stream.stats.exceptions import ProfileError


def read_csv_columns(path: Path) -> dict[str, list[str]]:
    """Columns of a CSV with a header row, as lists of cell strings."""
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise ProfileError(f"{path}: empty CSV (no header row)")
            columns: dict[str, list[str]] = {name: [] for name in header}
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise ProfileError(f"{path}:{line}: {len(row)} cells, header has {len(header)}")
                for name, cell in zip(header, row, strict=True):
                    columns[name].append(cell)
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from exc
    if not next(iter(columns.values())):
        raise ProfileError(f"{path}: no data rows")
    return columns
