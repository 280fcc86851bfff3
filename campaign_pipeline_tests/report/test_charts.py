"""The report's charts: a flag chart is the same bytes whatever this process drew before it."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from campaign_pipeline.report import charts

WEEK = pd.Timestamp("2025-03-03")


def _days(values: list[float], grain: str = "day") -> tuple[pd.Series, pd.Series]:
    step = pd.Timedelta(days=7 if grain == "week" else 1)
    last = WEEK + (0 if grain == "week" else 6) * step
    dates = pd.Series([last - (len(values) - 1 - i) * step for i in range(len(values))])
    return dates, pd.Series(values, dtype="float64")


def _chart_input(name: str) -> charts.FlagChartInput:
    if name == "day_spike_with_band":
        dates, values = _days([120.0, 131.5, 118.0, 125.0, np.nan, 122.0, 410.0] * 4)
        return charts.FlagChartInput(
            dates, values, dates.iloc[-1], 410.0, 124.0, 90.0, 160.0, "amount", "day", "high", WEEK
        )
    if name == "run_of_days_without_band":
        dates, values = _days([0.04, 0.05, 0.045, 0.05] * 5 + [0.01] * 8)
        return charts.FlagChartInput(
            dates,
            values,
            dates.iloc[-1],
            0.01,
            0.047,
            np.nan,
            np.nan,
            "percent",
            "day",
            "medium",
            WEEK,
        )
    if name == "week_drop":
        dates, values = _days([800.0, 760.0, 820.0, 790.0, 805.0, 140.0], grain="week")
        return charts.FlagChartInput(
            dates,
            values,
            dates.iloc[-1],
            140.0,
            795.0,
            600.0,
            990.0,
            "count",
            "week",
            "critical",
            WEEK,
        )
    if name == "unknown_value":
        dates, values = _days([3.0, 2.5, 2.8, 3.1, 2.9, 3.0, np.nan] * 2)
        return charts.FlagChartInput(
            dates, values, dates.iloc[-1], np.nan, 2.9, 2.0, 3.8, "ratio", "day", "low", WEEK
        )
    raise KeyError(name)


NAMES = ("day_spike_with_band", "run_of_days_without_band", "week_drop", "unknown_value")


def _fresh(name: str) -> str:
    """The chart drawn on new axes, as the first chart of a process is."""
    charts._FLAG_AXES.clear()
    return charts.flag_chart(_chart_input(name), "flag0", name)


@pytest.fixture
def fresh_charts():
    drawn = {name: _fresh(name) for name in NAMES}
    yield drawn
    charts._FLAG_AXES.clear()


def test_a_flag_chart_does_not_depend_on_the_charts_drawn_before_it(fresh_charts):
    assert len(set(fresh_charts.values())) == len(NAMES)  # four different charts
    # each drawn after every other one, in both orders, on the axes the others used
    for order in (NAMES, NAMES[::-1]):
        for name in order:
            assert charts.flag_chart(_chart_input(name), "flag0", name) == fresh_charts[name], name


def test_a_flag_chart_holds_its_own_points_only(fresh_charts):
    charts.flag_chart(_chart_input("week_drop"), "flag0", "week_drop")
    spike = charts.flag_chart(_chart_input("day_spike_with_band"), "flag1", "spike")
    # as many lines as the chart drawn on fresh axes: nothing left of the weekly chart
    assert spike.count('id="flag1-line2d_') == fresh_charts["day_spike_with_band"].count(
        'id="flag0-line2d_'
    )
    assert "flag0" not in spike


def test_a_label_with_backslashes_is_written_as_it_is():
    """Campaign ids and names are free text: `CMP100013\\x` in a label raised "bad escape"
    and failed the week's report; `\\g<0>` would have pasted the SVG's own tag into it."""
    for label in ["CMP100013\\x spend", "a \\g<0> b", "c\\1"]:
        svg = charts.flag_chart(_chart_input("day_spike_with_band"), "flag0", label)
        assert 'aria-label="{}"'.format(label.replace("<", "&lt;")) in svg


def test_large_amounts_read_in_thousands_millions_billions_and_trillions():
    compact = charts._value_formatter("amount")
    ticks = [compact(v, None) for v in (950, 2500, 5e8, 2.5e9, 1e12, 1.6e13, -3e6)]
    assert ticks == ["950", "2.5k", "500M", "2.5B", "1T", "16T", "-3M"]


def _axes_as_drawn_plainly():
    """The flag charts' figure and axes made the plain way: axis labels placed by matplotlib
    from the tick labels, the tick style set as each chart sets it."""
    with matplotlib.rc_context(charts._RC):
        fig = Figure(figsize=(4.8, 1.95))
        fig.subplots_adjust(left=0.12, right=0.98, top=0.95, bottom=0.14)
        ax = fig.add_subplot()
        ax.tick_params(length=2.5, pad=2)
    return fig, ax


def test_a_flag_chart_is_the_chart_drawn_on_plain_axes(fresh_charts):
    """The axes are made once so that a chart draws less (labels at fixed coordinates, the
    tick style set once); what is drawn is the same bytes."""
    for name in NAMES:
        charts._FLAG_AXES["flag"] = _axes_as_drawn_plainly()
        assert charts.flag_chart(_chart_input(name), "flag0", name) == fresh_charts[name], name


def _panel(title: str, seed: int, n: int, thresholds=(8.0, 12.0, 20.0, 0.3)) -> charts.ScatterPanel:
    rng = np.random.default_rng(seed)
    points = pd.DataFrame(
        {
            "cpl": rng.lognormal(2.5, 0.9, n),
            "conversion_rate": rng.uniform(0, 0.6, n),
            "health_bucket": rng.choice(list(charts.BUCKET_COLOURS), n),
            "in_universe": rng.random(n) > 0.2,
        }
    )
    return charts.ScatterPanel(title, points, *thresholds)


SCATTERS = {
    "one universe": [_panel("All campaigns: one benchmark universe of 300", 1, 300)],
    "three platforms, log scale": [
        _panel("platform meta: universe of 200", 2, 200),
        _panel("platform google: universe of 120", 3, 120, (5.0, 9.0, 30.0, 0.25)),
        _panel("platform $tiktok: universe of 40", 4, 40, (6.0, 11.0, 15.0, 0.4)),
    ],
    "no thresholds": [_panel("Thresholds differ per campaign", 5, 50, (np.nan,) * 4)],
}


@pytest.mark.parametrize("name", SCATTERS)
def test_the_scatter_chart_is_the_figure_saved_with_its_layout_engine(name, monkeypatch):
    """The constrained layout is run once before the figure is saved (`_lay_out_once`), not by
    a drawing of the whole figure inside savefig; the SVG is the same bytes."""
    once = charts.scatter_chart(SCATTERS[name], chart_id="scatter", label=name)
    monkeypatch.setattr(charts, "_lay_out_once", lambda fig: None)
    assert once == charts.scatter_chart(SCATTERS[name], chart_id="scatter", label=name)
