"""The report's charts: matplotlib drawn to SVG and inlined in the page.

Why SVG inline rather than PNG data URIs: the charts stay sharp at any zoom on a phone, their
text is real text in the page's own (system) font, and a small line chart is ~10-20 kB of SVG
against more for a PNG sharp enough for a phone screen. Each chart gets its own id prefix,
because matplotlib names its elements the same way in every figure ("figure_1", clip paths)
and ids must be unique in one HTML document. The drawing is deterministic (a fixed hash salt,
no date), so the same tables give the same bytes.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.dates import DateFormatter, WeekdayLocator
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

BUCKET_COLOURS: dict[str, str] = {  # Okabe-Ito: told apart with the common colour blindnesses
    "HERO": "#009E73",
    "GOOD": "#56B4E9",
    "MIXED": "#E69F00",
    "BAD": "#D55E00",
    "NEEDS_MORE_DATA": "#8C8C8C",
}
BUCKET_MARKERS = {"HERO": "*", "GOOD": "^", "MIXED": "o", "BAD": "X", "NEEDS_MORE_DATA": "s"}
SEVERITY_COLOURS = {"critical": "#B2182B", "high": "#D6604D", "medium": "#8073AC", "low": "#666"}
LINE = "#33506B"
BAND = "#4393C3"

_RC = {
    "svg.fonttype": "none",  # text stays text: the page's system font, no embedded glyphs
    "svg.hashsalt": "campaign_pipeline.report",  # stable ids: same tables, same page
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888",
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "xtick.color": "#444",
    "ytick.color": "#444",
    "axes.titlesize": 9,
}

_XML_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^")]+)')
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _to_svg(fig: Figure, chart_id: str, label: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _XML_PROLOG.sub("", buffer.getvalue(), count=1))
    svg = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", svg)
    # the viewBox keeps the proportions; CSS sets the width, so the chart follows the screen
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    # a function, not a template: a label holds campaign ids and names, free text in which a
    # backslash would read as a group reference or a bad escape
    svg = _SIZE.sub(
        lambda m: f'<svg{m.group(1)} class="chart" role="img" aria-label="{label}" id="{chart_id}"',
        svg,
        count=1,
    )
    return svg.strip()


# an axis of amounts reads 2.5B, not 2500M or 1e+06M (amounts go up to the ingestion bound, 1e12)
COMPACT_UNITS = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3))


def _value_formatter(kind: str) -> ticker.Formatter:
    if kind == "percent":
        return ticker.PercentFormatter(1.0, decimals=None)
    if kind == "ratio":
        return ticker.FuncFormatter(lambda v, _: f"{v:g}×")

    def compact(v, _):
        size = abs(v)
        for unit, scale in COMPACT_UNITS:
            if size >= scale:
                return f"{v / scale:g}{unit}"
        return f"{v:g}"

    return ticker.FuncFormatter(compact)


@dataclass(frozen=True)
class FlagChartInput:
    """One flag's chart: the metric's recent values and the flag's own numbers."""

    dates: pd.Series  # day, or week start for a week-grain flag
    values: pd.Series
    flagged_at: pd.Timestamp
    value: float
    expected: float
    lower: float  # NaN: no band (a flag raised on a run of days)
    upper: float
    kind: str  # amount / count / percent / ratio
    grain: str  # day / week
    severity: str
    week_start: pd.Timestamp  # the report's week, shaded


# The figure and axes this process draws its flag charts on (`_flag_axes`), and the lock that
# keeps two threads from drawing on them at once.
_FLAG_AXES: dict[str, tuple[Figure, Axes]] = {}
_FLAG_AXES_LOCK = threading.Lock()


def _flag_axes() -> tuple[Figure, Axes]:
    """The flag charts' figure and axes, emptied of the last chart (made under `_RC`).

    A fresh figure's axes and their ticks were a third of a flag chart's drawing time, and a
    page draws up to 40. The axes are reused instead: the last chart's lines, patches and
    collections removed, the data limits, autoscaling and colour cycle reset. Every chart
    sets its own locators, formatters and y floor, and the tick style, which no chart changes,
    is set once, so it is drawn to the bytes a fresh figure gives (test_charts holds them
    equal)."""
    if "flag" not in _FLAG_AXES:
        # fixed margins: constrained layout would double the drawing time of a small chart
        fig = Figure(figsize=(4.8, 1.95))
        fig.subplots_adjust(left=0.12, right=0.98, top=0.95, bottom=0.14)
        ax = fig.add_subplot()
        # the charts have no axis labels: placed at fixed coordinates, an (empty) label is
        # not placed by measuring every tick label of the axis again at each drawing
        ax.xaxis.set_label_coords(0.5, 0.0)
        ax.yaxis.set_label_coords(0.0, 0.5)
        ax.tick_params(length=2.5, pad=2)
        _FLAG_AXES["flag"] = (fig, ax)
    fig, ax = _FLAG_AXES["flag"]
    for artist in [*ax.lines, *ax.patches, *ax.collections]:
        artist.remove()
    ax.dataLim.set_points(Bbox.null().get_points())
    ax.set_autoscale_on(True)
    ax.set_prop_cycle(None)
    return fig, ax


def flag_chart(data: FlagChartInput, chart_id: str, label: str) -> str:
    """The metric's recent days (or weeks), the flagged point, and its expected band."""
    with _FLAG_AXES_LOCK, matplotlib.rc_context(_RC):
        fig, ax = _flag_axes()
        step = pd.Timedelta(days=7 if data.grain == "week" else 1)
        if data.grain == "day":
            ax.axvspan(
                data.week_start - step / 2,
                data.week_start + 6 * step + step / 2,
                color="#f1f1f1",
                zorder=0,
                lw=0,
            )
        ax.plot(
            data.dates, data.values, color=LINE, lw=1.3, marker="o", ms=2.2, zorder=2, clip_on=False
        )
        colour = SEVERITY_COLOURS.get(data.severity, "#B2182B")
        has_band = np.isfinite(data.lower) and np.isfinite(data.upper)
        if has_band:
            half = step * 0.42
            ax.fill_between(
                [data.flagged_at - half, data.flagged_at + half],
                [data.lower] * 2,
                [data.upper] * 2,
                color=BAND,
                alpha=0.35,
                lw=0,
                zorder=1,
            )
        if np.isfinite(data.expected):
            if has_band:
                ax.plot([data.flagged_at], [data.expected], marker="_", ms=11, mew=2, color=BAND)
            else:  # a run of days against its baseline level: the level as a dashed line
                shown = data.dates[data.dates <= data.flagged_at]
                start = shown.min() if len(shown) else data.flagged_at
                ax.plot(
                    [start, data.flagged_at],
                    [data.expected] * 2,
                    ls="--",
                    lw=1.1,
                    color=BAND,
                    zorder=1,
                )
        if np.isfinite(data.value):
            ax.plot(
                [data.flagged_at],
                [data.value],
                marker="o",
                ms=7,
                mfc=colour,
                mec="white",
                mew=1.2,
                zorder=4,
                clip_on=False,
            )
        ax.yaxis.set_major_formatter(_value_formatter(data.kind))
        ax.yaxis.set_major_locator(ticker.MaxNLocator(4))
        if data.grain == "week":
            ax.xaxis.set_major_locator(WeekdayLocator(byweekday=0, interval=2))
        else:
            ax.xaxis.set_major_locator(WeekdayLocator(byweekday=0))
        ax.xaxis.set_major_formatter(DateFormatter("%b %d"))
        low = min(0.0, np.nanmin([np.nanmin(data.values, initial=np.inf), data.value]))
        ax.set_ylim(bottom=low if np.isfinite(low) else 0.0)
        return _to_svg(fig, chart_id, label)


@dataclass(frozen=True)
class ScatterPanel:
    """Campaigns compared with one benchmark universe, and that universe's thresholds."""

    title: str
    points: pd.DataFrame  # cpl, conversion_rate, health_bucket, in_universe
    cpl_p25: float
    cpl_p50: float
    cpl_p75: float
    conv_p75: float


def _threshold_line(ax, value: float, vertical: bool, text: str, colour: str) -> None:
    if not np.isfinite(value):
        return
    if vertical:
        ax.axvline(value, color=colour, lw=1, ls="--", zorder=1)
        ax.annotate(
            text,
            (value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize=7.5,
            color=colour,
            rotation=90,
        )
    else:
        ax.axhline(value, color=colour, lw=1, ls="--", zorder=1)
        ax.annotate(
            text,
            (1.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            va="bottom",
            ha="right",
            fontsize=7.5,
            color=colour,
        )


def _draw_panel(ax, panel: ScatterPanel, log_x: bool) -> None:
    points = panel.points
    p25, p50, p75, c75 = panel.cpl_p25, panel.cpl_p50, panel.cpl_p75, panel.conv_p75
    if log_x:
        ax.set_xscale("log")
    if all(np.isfinite([p25, p50, c75])):
        top = max(float(np.nanmax(points["conversion_rate"], initial=c75)) * 1.08, c75 * 1.2)
        # the two zones the rules reward: HERO (P75 conversion, CPL <= P25), GOOD (<= P50)
        left = float(np.nanmin(points["cpl"], initial=p25)) / (1.5 if log_x else 1) - 1e-9
        ax.fill_between([min(left, p25), p25], c75, top, color=BUCKET_COLOURS["HERO"], alpha=0.1)
        ax.fill_between([p25, p50], c75, top, color=BUCKET_COLOURS["GOOD"], alpha=0.1)
    _threshold_line(ax, p25, True, f"P25 CPL {p25:,.2f}", "#1b7837")
    _threshold_line(ax, p50, True, f"P50 CPL {p50:,.2f}", "#555")
    _threshold_line(ax, p75, True, f"P75 CPL {p75:,.2f}", "#b35806")
    _threshold_line(ax, c75, False, f"P75 conversion {c75 * 100:.1f}%", "#1b7837")
    if np.isfinite(p75):  # BAD lives on the zero-conversion line at or above the P75 CPL
        right = max(float(np.nanmax(points["cpl"], initial=p75)) * 1.3, p75 * 1.1)
        ax.plot([p75, right], [0, 0], color=BUCKET_COLOURS["BAD"], lw=3, alpha=0.35, zorder=1)
    for bucket, colour in BUCKET_COLOURS.items():
        rows = points[points["health_bucket"] == bucket]
        if not len(rows):
            continue
        inside = rows["in_universe"].astype(bool)
        kwargs = dict(marker=BUCKET_MARKERS[bucket], s=42 if bucket == "HERO" else 26, zorder=3)
        ax.scatter(
            rows.loc[inside, "cpl"],
            rows.loc[inside, "conversion_rate"],
            color=colour,
            edgecolors="white",
            linewidths=0.5,
            **kwargs,
        )
        if (~inside).any():  # not in the benchmark universe (too few leads): hollow
            ax.scatter(
                rows.loc[~inside, "cpl"],
                rows.loc[~inside, "conversion_rate"],
                facecolors="none",
                edgecolors=colour,
                linewidths=0.9,
                **kwargs,
            )
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_formatter(
        ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}")
    )
    ax.set_xlabel("CPL over the window (spend / leads)" + (", log scale" if log_x else ""))
    ax.set_ylabel("Conversion rate\n(converted / leads)")
    # a segment's name is text, not a formula: matplotlib reads "$5 to $10" as mathtext
    ax.set_title(panel.title.replace("$", r"\$"), loc="left")


def _legend_handles(panels: list[ScatterPanel]) -> list[Line2D]:
    """One entry per bucket shown (with its count over all panels), and what hollow means."""
    buckets = pd.concat([p.points["health_bucket"] for p in panels]).value_counts()
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker=BUCKET_MARKERS[bucket],
            ms=7,
            color=colour,
            label=f"{bucket} ({int(buckets[bucket])})",
        )
        for bucket, colour in BUCKET_COLOURS.items()
        if bucket in buckets.index
    ]
    handles.append(
        Line2D([], [], ls="", marker="o", ms=6, mfc="none", mec="#555", label="outside universe")
    )
    return handles


def _lay_out_once(fig: Figure) -> None:
    """Run the figure's constrained layout as saving it to SVG would, then switch the layout
    engine off.

    Saved with a layout engine, a figure is drawn twice: once with drawing turned off, for the
    layout (on an SVG renderer at 72 dpi, the figure's canvas an SVG canvas), then for the
    file. The layout alone is what the first drawing is for; run here on the same renderer it
    places every axes and the legend where that drawing would, and the figure is then drawn
    once (test_charts holds the bytes equal to a figure saved with its engine on)."""
    FigureCanvasSVG(fig)
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine(None)


def scatter_chart(panels: list[ScatterPanel], chart_id: str, label: str) -> str:
    """CPL against conversion rate, coloured by bucket, with the thresholds the rules used."""
    cpl = pd.concat([p.points["cpl"] for p in panels]) if panels else pd.Series(dtype=float)
    positive = cpl[cpl > 0]
    log_x = bool(len(positive) == len(cpl) and len(cpl) and positive.max() / positive.min() > 20)
    columns = 1 if len(panels) <= 1 else 2
    rows = max(1, -(-len(panels) // columns))
    with matplotlib.rc_context(_RC):
        size = (8.0, 4.6) if columns == 1 else (8.6, 3.1 * rows)
        fig = Figure(figsize=size, layout="constrained")
        axes = fig.subplots(rows, columns, squeeze=False)
        for index, ax in enumerate(axes.flat):
            if index < len(panels):
                _draw_panel(ax, panels[index], log_x)
            else:
                ax.set_visible(False)
        if panels:
            fig.legend(
                handles=_legend_handles(panels),
                loc="outside right upper" if columns == 1 else "outside lower center",
                ncols=1 if columns == 1 else 3,
                frameon=False,
                fontsize=8,
            )
        _lay_out_once(fig)
        return _to_svg(fig, chart_id, label)
