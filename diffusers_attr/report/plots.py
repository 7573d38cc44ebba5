"""Plots of an :class:`~diffusers_attr.report.AttributionSummary` (matplotlib, PNG bytes).

Uses matplotlib's object-oriented API (``Figure`` + the Agg canvas): no pyplot, no global backend
state, safe in threads and headless. Each function returns the PNG as bytes.
"""

from __future__ import annotations

import io

import numpy as np

from .aggregate import AttributionSummary

_ACCENT = "#2f6fdb"
_WARN = "#d9534f"
_MUTED = "#8a93a3"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 5.6, height: float = 3.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _style(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(True, color="#e1e4ea", linewidth=0.6)
    axes.set_axisbelow(True)


def share_distribution(summary: AttributionSummary) -> bytes:
    """Histogram of the top item's share in each output, with the flagged near-copies marked."""
    figure, axes = _figure()
    shares = np.asarray(summary.top1_shares, dtype=np.float64)
    upper = max(0.05, float(shares.max()) if len(shares) else 0.05)
    bins = np.linspace(0, min(1.0, upper * 1.05), 41)
    axes.hist(shares, bins=bins, color=_ACCENT, alpha=0.85, label="outputs")
    top1 = [e.output_share for e in summary.flags if e.output_share is not None]
    if top1:
        axes.plot(top1, np.zeros(len(top1)), "v", color=_WARN, markersize=9, clip_on=False, label="flagged near-copies")
    axes.set_xlabel("share of the output's patch mass held by its top training item")
    axes.set_ylabel("outputs")
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Top-source share per output", fontsize=11)
    _style(axes)
    axes.legend(frameon=False, fontsize=8)
    return _png(figure)


def coverage_curve(summary: AttributionSummary) -> bytes:
    """Cumulative share of the mass against the number of items (largest first), with the 50% and 90%
    marks; for top-K results also the curve over the listed mass and its ceiling."""
    figure, axes = _figure()
    x, y = summary.coverage_curve
    if len(x):
        axes.plot(x, y, color=_ACCENT, linewidth=2, label="of all mass")
        if summary.basis != "full" and summary.listed_mass > 0:
            axes.plot(x, y / summary.listed_mass, color=_ACCENT, linewidth=1.2, linestyle="--", label="of the listed mass")
            axes.axhline(summary.listed_mass, color=_MUTED, linewidth=1, linestyle=":",
                         label=f"listed mass ({summary.listed_mass:.0%}; the rest is outside each output's top-K)")
        for key, value in summary.coverage.items():
            if value is not None:
                axes.axvline(value, color=_MUTED, linewidth=0.8)
                axes.annotate(f"{key}: {value:,} items", (value, float(key.rstrip('%')) / 100), fontsize=8,
                              xytext=(4, -12), textcoords="offset points")
        if x[-1] > 20:
            axes.set_xscale("log")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("training items, largest share first")
    axes.set_ylabel("cumulative share of the mass")
    axes.set_title("Coverage", fontsize=11)
    _style(axes)
    axes.legend(frameon=False, fontsize=8, loc="lower right")
    return _png(figure)


def breakdown_bars(summary: AttributionSummary, field: str, values: int = 15) -> bytes:
    """Share of all outputs' mass per value of a metadata field (largest ``values`` values), with the
    number of outputs whose top source has that value."""
    rows = summary.breakdowns[field]
    shown = rows[:values]
    if field == "label" or all(_numeric(row.value) for row in shown):
        shown = sorted(shown, key=lambda row: float(row.value) if _numeric(row.value) else float("inf"))
    figure, axes = _figure(5.6, 3.4 if len(shown) <= 12 else 4.2)
    labels = [row.value if len(row.value) <= 18 else row.value[:8] + "…" + row.value[-9:] for row in shown]  # both ends of paths
    positions = np.arange(len(shown))
    bars = axes.bar(positions, [row.share for row in shown], color=_ACCENT)
    for bar, row in zip(bars, shown):
        if row.top1:
            axes.annotate(f"top {row.top1:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                          fontsize=7, xytext=(0, 2), textcoords="offset points", color="#444")
    axes.set_xticks(positions, labels, rotation=0 if max((len(l) for l in labels), default=0) <= 4 else 35,
                    ha="center" if max((len(l) for l in labels), default=0) <= 4 else "right", fontsize=8)
    axes.set_ylabel("share of all mass")
    axes.set_title(f"Share by {field}" + (f" (top {values} of {len(rows)} values)" if len(rows) > values else ""), fontsize=11)
    _style(axes)
    axes.grid(False, axis="x")
    return _png(figure)


def level_profile(summary: AttributionSummary) -> bytes:
    """Effective number of items at each noise level (few: the outputs lean on few items there)."""
    figure, axes = _figure(5.6, 3.0)
    levels = summary.levels
    axes.plot([level.noise for level in levels], [level.effective_items for level in levels], "o-", color=_ACCENT)
    axes.set_xlabel("noise level nu (low: fine detail, high: coarse structure)")
    axes.set_ylabel("effective number of items")
    axes.set_title("Concentration per noise level", fontsize=11)
    axes.set_ylim(bottom=0)
    _style(axes)
    return _png(figure)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
