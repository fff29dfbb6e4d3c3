"""``driftline report``: an HTML drift report of current rows against a reference.

Reference: a profile JSON or a training CSV (``--reference``, else
``DRIFTLINE_DRIFT_REFERENCE_PATH`` / ``DRIFT_REFERENCE_PATH``, else the committed
``data/sample/drift_reference.csv``). Current rows: a CSV (``--current``, else
``DRIFT_CURRENT_PATH``, default ``data/sample/drift_current.csv``). Both go through
``stream.stats.detect``; the page is rendered by :func:`stream.report.render_report`
and written under ``<DRIFTLINE_DATA_DIR>/reports/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from driftline.settings import StackSettings
from serving.settings import DriftFixtureSettings
from stream.report import render_report, sketch_counts
from stream.settings import DriftStatsSettings
from stream.stats import DriftStatsError, ReferenceProfile, WindowSketch, detect
from stream.stats.csv_source import read_csv_columns
from stream.stats.layout import to_profile_columns


def load_reference(path: Path, label_column: str) -> ReferenceProfile:
    """A profile JSON, or a profile built from a training CSV (label column left out)."""
    if path.suffix.lower() == ".csv":
        exclude = [label_column] if label_column in read_csv_columns(path) else []
        return ReferenceProfile.from_csv(path, exclude=exclude)
    return ReferenceProfile.load(path)


def build_report(reference: Path, current: Path, label_column: str = "target") -> str:
    """The report's HTML for ``current`` rows against ``reference`` (no file written)."""
    profile = load_reference(reference, label_column)
    columns = read_csv_columns(current)
    names = [n for n in columns if n != label_column]
    matrix = np.array(
        [[float(c) if c.strip() else np.nan for c in columns[n]] for n in names], dtype=float
    ).T
    result = detect(profile, matrix, names)
    laid_out = to_profile_columns(profile, matrix, names)
    sketch = WindowSketch(profile).update(laid_out.numeric, categorical=laid_out.categorical)
    return render_report(
        result,
        profile,
        sketch_counts(sketch),
        subtitle=f"current: {current.name} ({len(matrix)} rows) vs reference: {reference.name}",
    )


def report(
    reference: Annotated[
        Path | None, typer.Option(help="Profile JSON or training CSV (default: settings).")
    ] = None,
    current: Annotated[
        Path | None, typer.Option(help="CSV of current rows (default: DRIFT_CURRENT_PATH).")
    ] = None,
    label_column: Annotated[
        str, typer.Option(help="Column that is the label, not a feature.")
    ] = "target",
    out: Annotated[Path | None, typer.Option(help="Output file (default: under reports/).")] = None,
) -> None:
    """Write an HTML drift report (histograms, statistics, flags) of current vs reference."""
    fixtures = DriftFixtureSettings()
    reference = reference or DriftStatsSettings().reference_path or fixtures.reference_path
    current = current or fixtures.current_path
    try:
        page = build_report(reference, current, label_column)
    except (DriftStatsError, OSError, ValueError) as exc:
        typer.echo(f"cannot build the report: {exc}", err=True)
        raise typer.Exit(1) from None
    if out is None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        out = StackSettings().data_dir / "reports" / f"drift-{current.stem}-{stamp}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    typer.echo(str(out))
