"""The HTML drift report: one self-contained page per window (inline SVG, no network).

Pure rendering: a window's :class:`~stream.stats.WindowDrift`, its reference profile and
the window's counts on the reference's bins in, an HTML string out. Plain string
templating with :func:`html.escape` (jinja2 is not a dependency and a page this small
does not need one). Each feature gets the current-vs-reference histogram on the
reference's bins (shares, so windows of any size compare), its statistics and its flag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from stream.stats import FeatureDrift, ReferenceProfile, WindowDrift, WindowSketch

_W, _H, _PAD = 360, 120, 18
_REF_COLOUR, _CUR_COLOUR = "#9aa5b1", "#d9480f"


def sketch_counts(sketch: WindowSketch) -> dict[str, list[int]]:
    """Current counts per feature on the reference's bins (categories: plus 'unseen')."""
    grid, table = sketch.profile.numeric_grid, sketch.profile.category_table
    out: dict[str, list[int]] = {}
    for j, name in enumerate(grid.names):
        out[name] = sketch.numeric.counts[j, : int(grid.nbins[j])].tolist()
    for j, name in enumerate(table.names):
        out[name] = sketch.categorical.counts[j].tolist()
    return out


def _reference(profile: ReferenceProfile, name: str) -> tuple[list[int], list[str]]:
    """Reference counts and a label per bin (the bin's value range, or the category)."""
    for f in profile.numeric:
        if f.name == name:
            edges = [-np.inf, *f.edges, np.inf]
            labels = [f"({edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(len(f.counts))]
            return list(f.counts), labels
    for c in profile.categorical:
        if c.name == name:
            return [*c.counts, 0], [*c.categories, "(unseen)"]
    raise KeyError(name)


def histogram_svg(reference: Sequence[int], current: Sequence[int], labels: Sequence[str]) -> str:
    """Side-by-side bars of reference and current shares per bin, as inline SVG."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref_share = ref / max(ref.sum(), 1.0)
    cur_share = cur / max(cur.sum(), 1.0)
    top = max(float(ref_share.max(initial=0.0)), float(cur_share.max(initial=0.0)), 1e-9)
    k = len(labels)
    slot = (_W - 2 * _PAD) / max(k, 1)
    bars: list[str] = []
    for i, label in enumerate(labels):
        for share, colour, offset in (
            (ref_share[i], _REF_COLOUR, 0.1),
            (cur_share[i], _CUR_COLOUR, 0.5),
        ):
            h = (_H - 2 * _PAD) * share / top
            x = _PAD + slot * (i + offset)
            y = _H - _PAD - h
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.4:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)}: {share:.1%}</title></rect>'
            )
    axis = f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>'
    return f'<svg width="{_W}" height="{_H}" role="img">{axis}{"".join(bars)}</svg>'


def _stat_rows(feature: FeatureDrift) -> str:
    data = feature.data
    cells = [("effect", data.test_stat), ("floor", data.threshold), ("p", data.p_val)]
    cells += [("q (BH)", data.q_val)]
    cells += list(data.statistics.items())
    return "".join(
        f"<tr><td>{escape(k)}</td><td>{'-' if v is None else f'{v:.4g}'}</td></tr>"
        for k, v in cells
    )


def _feature_section(
    feature: FeatureDrift, profile: ReferenceProfile, counts: Mapping[str, Sequence[int]]
) -> str:
    name = feature.meta.name
    reference, labels = _reference(profile, name)
    current = list(counts.get(name, [0] * len(reference)))
    flag = (
        "DRIFT"
        if feature.data.is_drift
        else ("not evaluated" if not feature.data.evaluated else "ok")
    )
    css = "drift" if feature.data.is_drift else "ok"
    return (
        f'<section class="feature {css}"><h3>{escape(name)} '
        f'<span class="flag">{flag}</span></h3>'
        f"{histogram_svg(reference, current, labels)}"
        f'<table class="stats">{_stat_rows(feature)}'
        f"<tr><td>events</td><td>{feature.data.sample_size}</td></tr></table></section>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.summary td{padding:2px 10px}.features{display:flex;flex-wrap:wrap;gap:12px}
.feature{border:1px solid #ccc;border-radius:6px;padding:8px;width:380px}
.feature.drift{border:2px solid #d9480f;background:#fff4ef}
.flag{font-size:.8em;padding:1px 6px;border-radius:4px;background:#e6e6e6}
.drift .flag{background:#d9480f;color:#fff}.stats{font-size:.8em}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px}
"""


def render_report(
    result: WindowDrift,
    profile: ReferenceProfile,
    counts: Mapping[str, Sequence[int]],
    *,
    title: str = "Driftline drift report",
    subtitle: str = "",
) -> str:
    """The whole HTML page of one window: summary, then drifted features first."""
    data = result.data
    features = sorted(data.features, key=lambda f: (not f.data.is_drift, f.meta.name))
    drifted = [f.meta.name for f in features if f.data.is_drift]
    summary = [
        ("drift_score", f"{data.drift_score:.3f}"),
        ("window flagged", str(data.is_drift)),
        ("critical", f"{data.critical} (score >= {data.critical_score:g})"),
        ("events", str(data.event_count)),
        ("drifted features", f"{len(drifted)} of {len(features)}: {', '.join(drifted) or '-'}"),
        ("alpha (BH)", f"{data.alpha:g}"),
        ("reference", result.meta.reference_id),
        ("missing features", ", ".join(data.missing_features) or "-"),
        ("unknown columns", ", ".join(data.unknown_features) or "-"),
    ]
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in summary)
    sections = "".join(_feature_section(f, profile, counts) for f in features)
    legend = (
        f'<p class="legend"><span style="background:{_REF_COLOUR}"></span>reference '
        f'<span style="background:{_CUR_COLOUR}"></span>current (share of events per '
        "reference bin)</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(subtitle)}</p>"
        f'<table class="summary">{rows}</table>{legend}'
        f'<div class="features">{sections}</div></body></html>'
    )
