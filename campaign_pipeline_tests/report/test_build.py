"""The page builder on a published sample: every number it shows is the published tables',
the filters offer every value of the data, the thresholds are the health rules' own, and
nothing personal reaches the page. Pure: tables in, HTML out, no Dagster and no browser."""

from __future__ import annotations

import dataclasses
import re
import shutil

import markupsafe
import numpy as np
import pandas as pd
import pytest

from campaign_pipeline import health
from campaign_pipeline.constants import RECOMMENDED_ACTIONS, SEVERITY_RANK
from campaign_pipeline.report import build_weekly_report, load_report_tables, report_path
from campaign_pipeline.report.build import (
    campaign_cards,
    campaign_rows,
    quarantine_summary,
    scatter_panels,
)
from campaign_pipeline.report.charts import scatter_chart
from campaign_pipeline.report.files import shift
from campaign_pipeline.report.self_contained import external_references
from campaign_pipeline.report.template import _escaped
from campaign_pipeline_tests.report._support import (
    SECTIONS,
    busiest_week,
    same,
    soup,
    value,
    week_table,
)

FILTER_COLUMNS = {
    "user": "user_id",
    "project": "project_name",
    "platform": "platform",
    "bucket": "health_bucket",
    "action": "recommended_action",
}


@pytest.fixture(scope="module")
def week(published_sample) -> str:
    return busiest_week(published_sample.out_dir)


@pytest.fixture(scope="module")
def tables(published_sample, week):
    return load_report_tables(published_sample.out_dir, week)


@pytest.fixture(scope="module")
def page(tables):
    return soup(build_weekly_report(tables).html)


def _portfolio(out_dir, week) -> pd.Series:
    totals = week_table(out_dir, "weekly_totals", week)
    return totals[totals["scope"] == "all"].iloc[0]


def _words(element) -> str:
    """An element's text as the browser shows it: one space between words."""
    return " ".join(element.text.split())


def test_every_section_is_there(page):
    for section in SECTIONS:
        assert page.select_one(f"section#{section}") is not None, section
    assert page.select_one("#data-window") is not None


def test_the_weeks_totals_and_their_change_are_weekly_totals(published_sample, week, page):
    now = _portfolio(published_sample.out_dir, week)
    before = _portfolio(published_sample.out_dir, shift(week, -1))
    cards = {card["data-metric"]: card for card in page.select("#week-totals .card")}
    assert set(cards) == {
        "spend",
        "leads",
        "cpl",
        "conversion_rate",
        "lead_conversion_rate",
        "roas",
    }
    for metric, card in cards.items():
        assert same(value(card), now[metric]), metric
        assert same(float(card["data-previous"]), before[metric]), metric
    assert cards["spend"].select_one(".value").text == f"{now['spend']:,.2f}"
    # money and counts change relatively, rates by percentage points
    assert float(cards["spend"]["data-change"]) == pytest.approx(now["spend"] / before["spend"] - 1)
    assert float(cards["conversion_rate"]["data-change"]) == pytest.approx(
        (now["conversion_rate"] - before["conversion_rate"]) * 100
    )
    totals = week_table(published_sample.out_dir, "weekly_totals", week)
    platforms = totals[totals["scope"] != "all"].set_index("scope")
    rows = page.select("#platform-totals tbody tr")
    assert sorted(row.td.text for row in rows) == sorted(platforms.index)
    for row in rows:
        spend, leads, cpl, conversion_rate, roas = (value(td) for td in row.select("td.num"))
        expected = platforms.loc[row.td.text]
        assert same(spend, expected["spend"]) and same(leads, expected["leads"])
        assert same(cpl, expected["cpl"]) and same(conversion_rate, expected["conversion_rate"])
        assert same(roas, expected["roas"])


def _with_data_range(tables, first, last):
    """The tables with the week's weekly_totals recording another accepted data range."""
    totals = tables.totals.assign(
        data_first_day=pd.Timestamp(first), data_last_day=pd.Timestamp(last)
    )
    return dataclasses.replace(tables, totals=totals)


def test_a_partial_week_warns_that_its_changes_compare_unlike_weeks(tables):
    """A week the accepted data begins or ends inside (the sample's last week holds one day):
    its -80 % spend is not news. The warning counts the days the data covers."""
    tables = dataclasses.replace(tables, flags=tables.flags.iloc[0:0])  # charts beside the point
    week = pd.Timestamp(tables.week)
    full = soup(build_weekly_report(tables).html)
    assert full.select_one("#data-window").text.count("delivery reported on 7 of 7 days") == 1
    assert full.select_one("#partial-week") is None
    ends = _with_data_range(tables, week - pd.Timedelta(days=30), week + pd.Timedelta(days=1))
    partial = soup(build_weekly_report(ends).html)
    assert (
        f"The data covers only 2 of the week's 7 days ({week.date()} to "
        f"{(week + pd.Timedelta(days=1)).date()})" in _words(partial.select_one("#partial-week"))
    )
    begins = _with_data_range(tables, week + pd.Timedelta(days=6), week + pd.Timedelta(days=40))
    one_day = soup(build_weekly_report(begins).html)
    assert (
        f"The data covers only 1 of the week's 7 days ({(week + pd.Timedelta(days=6)).date()})"
        in _words(one_day.select_one("#partial-week"))
    )


def test_a_day_without_delivery_inside_the_data_does_not_make_a_week_partial(tables):
    """An outage: no campaign delivered on five of the week's days, but the accepted data runs
    on before and after the week. The week is whole (its zeros are data); the data window
    still says on how many days there was delivery."""
    tables = dataclasses.replace(tables, flags=tables.flags.iloc[0:0])
    week = pd.Timestamp(tables.week)
    days = tables.delivery_days[:2]
    assert days == (week, week + pd.Timedelta(days=1))
    this_week = tables.totals[pd.to_datetime(tables.totals["week_start"]) == week]
    first, last = this_week[["data_first_day", "data_last_day"]].iloc[0]
    assert (first, last) == (week, week + pd.Timedelta(days=6))  # the data cover the week
    outage = soup(build_weekly_report(dataclasses.replace(tables, delivery_days=days)).html)
    assert outage.select_one("#partial-week") is None
    assert "delivery reported on 2 of 7 days" in _words(outage.select_one("#data-window"))


def test_a_week_whose_totals_lack_the_data_range_counts_its_delivery_days(tables):
    """weekly_totals written without data_first_day/data_last_day: the delivery days are the
    only trace of the data's range there."""
    tables = dataclasses.replace(
        tables,
        flags=tables.flags.iloc[0:0],
        totals=tables.totals.drop(columns=["data_first_day", "data_last_day"]),
    )
    assert soup(build_weekly_report(tables).html).select_one("#partial-week") is None
    short = dataclasses.replace(tables, delivery_days=tables.delivery_days[:3])
    assert "covers only 3 of the week's 7 days" in _words(
        soup(build_weekly_report(short).html).select_one("#partial-week")
    )


def test_weekly_totals_carry_the_runs_data_range_and_the_pages_follow_it(published_sample):
    """weekly_totals records the part of its week inside the run's accepted day range (the days
    a published figure can fall on, as in the CLI's partial-week note), here bounded by the
    first and last days of the published daily rows. A page warns of a partial week exactly
    when that range does not cover its week."""
    out = published_sample.out_dir
    weeks = list(published_sample.weeks)
    daily = pd.concat([week_table(out, "daily_campaign_metrics", w) for w in weeks])
    for week in weeks:
        totals = week_table(out, "weekly_totals", week)
        start = pd.Timestamp(week)
        first = max(start, daily["date"].min())
        last = min(start + pd.Timedelta(days=6), daily["date"].max())
        assert (totals["data_first_day"] == first).all(), week
        assert (totals["data_last_day"] == last).all(), week
        whole = daily["date"].min() <= start and daily["date"].max() >= start + pd.Timedelta(days=6)
        page = soup(build_weekly_report(load_report_tables(out, week)).html)
        assert (page.select_one("#partial-week") is None) == whole, week


def test_bucket_counts_and_spend_per_action_are_the_health_tables(published_sample, week, page):
    out = published_sample.out_dir
    current = week_table(out, "campaign_health", week)["health_bucket"].value_counts()
    previous = week_table(out, "campaign_health", shift(week, -1))["health_bucket"].value_counts()
    rows = page.select("#bucket-counts tbody tr")
    assert len(rows) == 5
    for row in rows:
        now, before = (value(td) for td in row.select("td.num")[:2])
        assert now == current.get(row["data-bucket"], 0)
        assert before == previous.get(row["data-bucket"], 0)
    summary = week_table(out, "health_action_summary", week).set_index("recommended_action")
    rows = page.select("#action-spend tbody tr")
    assert [row["data-action"] for row in rows] == list(RECOMMENDED_ACTIONS)
    for row in rows:
        n, spend, share, leads, converted = (value(td) for td in row.select("td.num"))
        published = summary.loc[row["data-action"]]
        assert n == published["n_campaigns"]
        assert same(spend, published["total_spend"]) and same(share, published["share_of_spend"])
        assert same(leads, published["total_leads"])
        assert same(converted, published["converted_leads"])


def test_quarantined_rows_and_spend_of_the_week(published_sample, week, tables, page):
    now = _portfolio(published_sample.out_dir, week)
    shown = page.select_one("#quarantine-week")
    assert now["quarantined_rows"] > 0, "the sample's defects should quarantine rows this week"
    assert float(shown["data-rows"]) == now["quarantined_rows"]
    assert float(shown["data-spend"]) == now["quarantined_spend"]
    assert shown["data-source"] == "weekly_totals"
    reasons = page.select("#quarantine-reasons tbody tr")
    assert sum(value(row.select_one("td.num")) for row in reasons) == len(tables.quarantine)


def test_without_quarantine_columns_the_week_is_counted_from_the_quarantine_table(tables):
    """Tables published before weekly_totals carried the columns still show the week's rows."""
    stripped = dataclasses.replace(
        tables, totals=tables.totals.drop(columns=["quarantined_rows", "quarantined_spend"])
    )
    derived, published = quarantine_summary(stripped), quarantine_summary(tables)
    assert (derived["source"], published["source"]) == ("quarantine", "weekly_totals")
    assert float(derived["week_rows"]["raw"]) == float(published["week_rows"]["raw"]) > 0
    assert float(derived["week_spend"]["raw"]) == pytest.approx(
        float(published["week_spend"]["raw"])
    )


def test_an_out_dir_without_the_quarantine_table_says_so_instead_of_an_empty_quarantine(
    published_sample, week, tmp_path
):
    """An out dir copied without quarantine.parquet: the week's figures still come from
    weekly_totals, the whole quarantine is named as missing, not shown as 0 rows."""
    from campaign_pipeline.cli import main

    out = tmp_path / "out"
    shutil.copytree(
        published_sample.out_dir,
        out,
        ignore=shutil.ignore_patterns("quarantine.parquet", "weekly_report", "*.sqlite"),
    )
    assert main(["report", "--week", week, "--out", str(out)]) == 0
    page = soup(report_path(out, week).read_text(encoding="utf-8"))
    shown = page.select_one("#quarantine-week")
    said = " ".join(shown.text.split())
    assert "The quarantine table (quarantine.parquet) is not in this out dir" in said
    assert "The whole quarantine holds" not in said
    assert page.select("#quarantine-reasons") == []
    now = _portfolio(published_sample.out_dir, week)
    assert float(shown["data-rows"]) == now["quarantined_rows"] > 0
    assert shown["data-source"] == "weekly_totals"


def test_without_the_quarantine_table_or_its_columns_the_weeks_figures_are_unknown(tables):
    neither = dataclasses.replace(
        tables,
        totals=tables.totals.drop(columns=["quarantined_rows", "quarantined_spend"]),
        quarantine=None,
    )
    summary = quarantine_summary(neither)
    assert (summary["source"], summary["published"]) == ("none", False)
    assert summary["week_rows"]["raw"] == summary["week_spend"]["raw"] == ""  # dashes, not 0
    assert summary["total_rows"] is None and summary["by_reason"] == []
    page = soup(build_weekly_report(neither).html)
    assert page.select_one("#quarantine-week")["data-rows"] == ""
    assert page.select_one("#quarantine-missing") is not None


def test_explorer_has_one_row_per_campaign_with_the_tables_numbers(tables, page):
    judged = tables.health.set_index("campaign_id")
    week = tables.weekly[tables.weekly["week_start"] == pd.Timestamp(tables.week)]
    week = week.set_index("campaign_id")
    flags = tables.flags["campaign_id"].value_counts()
    column = {th.text: i for i, th in enumerate(page.select("#explorer-table thead th"))}
    rows = page.select("#explorer-table tbody tr")
    assert sorted(row["data-campaign"] for row in rows) == sorted(judged.index)
    checked = {
        "Spend (window)": "total_spend",
        "Leads (window)": "total_leads",
        "Converted (window)": "converted_leads",
        "Lead conv. rate (window)": "conversion_rate",
        "CPL (window)": "cpl",
        "ROAS (window)": "roas",
        "Days active": "days_active",
    }
    for row in rows:
        campaign = row["data-campaign"]
        cells = row.find_all("td", recursive=False)
        for label, name in checked.items():
            assert same(value(cells[column[label]]), judged.loc[campaign, name]), (campaign, label)
        assert same(value(cells[column["Spend (week)"]]), week["spend"].get(campaign, np.nan))
        assert same(value(cells[column["CPL (week)"]]), week["cpl"].get(campaign, np.nan))
        assert value(cells[column["Flags (week)"]]) == flags.get(campaign, 0)
        assert cells[column["Reason"]].text == judged.loc[campaign, "reason"]
        for attribute, name in FILTER_COLUMNS.items():
            assert row[f"data-{attribute}"] == judged.loc[campaign, name]


def test_explorer_text_is_escaped_not_markup(tables):
    hostile = """<b onmouseover="x()">A & B's</b>"""
    health = tables.health.copy()
    health.loc[health.index[0], ["project_name", "reason"]] = hostile
    campaign = health.loc[health.index[0], "campaign_id"]
    page = soup(build_weekly_report(dataclasses.replace(tables, health=health)).html)
    row = page.select_one(f'#explorer-table tbody tr[data-campaign="{campaign}"]')
    assert row["data-project"] == hostile and not row.find("b")
    cells = row.find_all("td", recursive=False)
    assert [c.text for c in cells if c.text == hostile] == [hostile, hostile]  # project, reason
    assert all(c["data-v"] == hostile for c in cells if c.text == hostile)


@pytest.mark.parametrize(
    "values",
    [
        ["<b>", 'A & B\'s "x"', "", "plain", "4,406.03", "—"],
        ["a \x1f b", "<i>"],  # holds the separator: escaped one by one
        ["\x1f"],
        [],
    ],
)
def test_a_column_escaped_at_once_equals_its_values_escaped_one_by_one(values):
    assert _escaped(values) == [str(markupsafe.escape(v)) for v in values]


def test_filter_options_cover_every_value_in_the_data(tables, page):
    selects = page.select("#explorer-filters select")
    assert sorted(s["data-filter"] for s in selects) == sorted(FILTER_COLUMNS)
    rows = page.select("#explorer-table tbody tr")
    for select in selects:
        options = [o["value"] for o in select.find_all("option")]
        assert options[0] == ""  # "All"
        name = FILTER_COLUMNS[select["data-filter"]]
        assert sorted(options[1:]) == sorted(set(tables.health[name].astype(str)))
        assert {row[f"data-{select['data-filter']}"] for row in rows} <= set(options[1:])


def test_anomalies_are_the_weeks_flags_most_severe_first_with_charts(tables, page):
    cards = page.select("article.flag")
    assert len(cards) == len(tables.flags) > 0
    ranks = [SEVERITY_RANK[card["data-severity"]] for card in cards]
    assert ranks == sorted(ranks, reverse=True)
    top = page.select("#top-flags article.flag")
    assert len(top) == tables.flags["severity"].isin(["critical", "high"]).sum() > 0
    flags = tables.flags.assign(period=tables.flags["period_start"].dt.strftime("%Y-%m-%d"))
    flags = flags.set_index(["campaign_id", "grain", "period", "metric"])
    for card in cards:
        key = (card["data-campaign"], card["data-grain"], card["data-period"], card["data-metric"])
        flag = flags.loc[key]
        assert card["data-severity"] == flag["severity"]
        value_shown, expected_shown = card.select("dd[data-v]")
        assert same(value(value_shown), flag["value"])
        assert same(value(expected_shown), flag["expected"])
        assert flag["explanation"] in card.text and flag["suggested_action"] in card.text
    for card in top:
        chart = card.select_one("svg.chart")
        assert chart is not None and chart.find("path") is not None


def test_only_the_first_flags_get_a_chart_and_every_flag_keeps_its_card(tables, page):
    n_flags = len(tables.flags)
    assert n_flags > 3
    capped = soup(build_weekly_report(tables, max_flag_charts=3).html)
    cards, full_cards = capped.select("article.flag"), page.select("article.flag")
    assert [card["id"] for card in cards] == [card["id"] for card in full_cards]
    drawn = [card.select_one("svg.chart") is not None for card in cards]
    assert drawn == [True] * 3 + [False] * (n_flags - 3)  # the most severe, surest first
    for card, full in zip(cards[:3], full_cards[:3], strict=True):
        assert str(card.select_one("svg.chart")) == str(full.select_one("svg.chart"))
    for card in cards[3:]:
        assert "Not drawn: the 3 most severe, surest flags" in _words(card)
        assert card.select("dd[data-v]")  # value and expected are still shown
    no_charts = soup(build_weekly_report(tables, max_flag_charts=0).html)
    assert not no_charts.select("article.flag svg.chart")
    assert all("flag charts are off" in _words(c) for c in no_charts.select("article.flag"))


def test_scatter_draws_the_percentiles_the_health_rules_used(tables, page):
    rows = campaign_rows(tables, {})
    panels, _ = scatter_panels(rows)
    assert len(panels) == 1  # the sample runs the default platform-wide benchmark
    summary = tables.health[[*health.REQUIRED_COLUMNS]]
    judged = health.assign_health(summary, health.HealthRules())
    for name in ("cpl_p25", "cpl_p50", "cpl_p75", "conv_p75"):
        assert getattr(panels[0], name) == judged[name].iloc[0], name
    text = page.select_one("#scatter svg").text
    assert f"P25 CPL {judged['cpl_p25'].iloc[0]:,.2f}" in text
    assert f"P75 conversion {judged['conv_p75'].iloc[0] * 100:.1f}%" in text


def _per_platform_judged(platforms=("TikTok", "Facebook")) -> pd.DataFrame:
    """Thirty campaigns judged against their own platform's benchmark, a third on the first."""
    rng = np.random.default_rng(3)
    n = 30
    leads = rng.integers(10, 60, n).astype(float)
    converted = np.floor(leads * rng.uniform(0, 0.4, n))
    spend = leads * rng.uniform(10, 90, n)
    summary = pd.DataFrame(
        {
            "campaign_id": [f"C{i}" for i in range(n)],
            "platform": np.where(np.arange(n) % 3 == 0, *platforms),
            "user_id": "U1",
            "project_name": "P1",
            "total_spend": spend,
            "total_leads": leads,
            "converted_leads": converted,
            "conversion_rate": converted / leads,
            "cpl": spend / leads,
            "days_active": 20.0,
        }
    )
    return health.assign_health(summary, health.HealthRules(benchmark_scope="platform"))


def test_scatter_with_a_per_platform_benchmark_draws_each_platforms_thresholds():
    judged = _per_platform_judged()
    panels, _ = scatter_panels(judged)
    assert len(panels) == 2
    for panel in panels:
        platform = "TikTok" if "TikTok" in panel.title else "Facebook"
        own = judged[judged["platform"] == platform].iloc[0]
        assert (panel.cpl_p25, panel.cpl_p50, panel.cpl_p75, panel.conv_p75) == (
            own["cpl_p25"],
            own["cpl_p50"],
            own["cpl_p75"],
            own["conv_p75"],
        )
        assert set(panel.points["platform"]) == {platform}


def test_a_segment_name_with_dollar_signs_is_drawn_as_written():
    """Matplotlib reads text between two "$" as a formula: "$5 to $10" lost its dollars."""
    panels, _ = scatter_panels(_per_platform_judged(("Spend $5 to $10", "Facebook")))
    svg = scatter_chart(panels, "scatter", "CPL against conversion rate")
    titles = [" ".join(text.text.split()) for text in soup(svg).select("text")]
    assert any("Spend $5 to $10" in title for title in titles), titles


def test_the_flag_count_reads_most_severe_first_whatever_the_counts(tables):
    flags = tables.flags.iloc[:4].assign(severity=["low", "low", "low", "critical"])
    page = soup(build_weekly_report(dataclasses.replace(tables, flags=flags)).html)
    counts = " ".join(page.select_one("#anomalies p").text.split())
    assert counts.startswith("4 flags this week: 1 critical, 3 low."), counts
    one = flags.iloc[3:]
    page = soup(build_weekly_report(dataclasses.replace(tables, flags=one)).html)
    counts = " ".join(page.select_one("#anomalies p").text.split())
    assert counts.startswith("1 flag this week: 1 critical."), counts


def test_a_week_without_a_published_week_before_says_so_on_each_card(tables, week):
    this_week = tables.totals[pd.to_datetime(tables.totals["week_start"]) == pd.Timestamp(week)]
    assert 0 < len(this_week) < len(tables.totals)
    page = soup(build_weekly_report(dataclasses.replace(tables, totals=this_week)).html)
    for card in page.select("#week-totals .card"):
        assert _words(card.select_one(".change")) == "no figure for last week"


def test_single_campaigns_are_bad_hero_and_changed_ones_with_their_reason(tables, page):
    judged = tables.health
    chosen = judged["health_bucket"].isin(["BAD", "HERO"]) | judged["bucket_changed"]
    expected = set(judged.loc[chosen, "campaign_id"])
    cards = page.select("#campaigns article.campaign")
    assert expected and sorted(card["data-campaign"] for card in cards) == sorted(expected)
    judged = judged.set_index("campaign_id")
    for card in cards:
        row = judged.loc[card["data-campaign"]]
        assert card["data-bucket"] == row["health_bucket"]
        assert card.select_one(".reason").text == row["reason"]
        stats = {
            div.select_one(".label").text: value(div.select_one(".value"))
            for div in card.select(".stats div")
        }
        assert same(stats["Leads"], row["total_leads"]) and same(stats["CPL"], row["cpl"])
        assert same(stats["Lead conv. rate"], row["conversion_rate"])


def test_a_campaign_without_leads_or_delivery_says_so_instead_of_comparing_unknowns(tables):
    rows = campaign_rows(tables, {})
    rows = rows[rows["health_bucket"].isin(["BAD", "HERO"])].head(1).copy()
    rows[["cpl", "conversion_rate", "week_spend", "week_leads"]] = np.nan
    (card,) = campaign_cards(rows, {})
    conv_check, cpl_check, _ = card["checks"]
    p75 = f"{rows['conv_p75'].iloc[0] * 100:.1f}%"
    assert conv_check == f"Lead conversion rate unknown (no leads); the P75 is {p75}"
    assert cpl_check.startswith("CPL unknown (no leads or no spend); P25 ")
    assert card["week"] == "This week: no delivery reported"
    rows["week_leads"] = 3.0
    assert campaign_cards(rows, {})[0]["week"] == "This week: no delivery reported, 3 leads"


def test_no_personal_data_reaches_any_page(published_sample):
    """No lead's name, e-mail or phone in any page the pipeline wrote (the sample's leads all
    have them)."""
    leads = pd.read_csv(published_sample.data_dir / "raw" / "campaign_leads.csv", dtype=str)
    names, phones = set(leads["name"].dropna()), set(leads["phone"].dropna())
    assert len(names) > 100 and len(phones) > 1000
    for week in published_sample.weeks:
        html = report_path(published_sample.out_dir, week).read_text(encoding="utf-8")
        assert not re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", html), week  # no e-mail at all
        assert not names & set(re.findall(r"[A-Z][a-z]+ [A-Z][a-z]+", html)), week
        assert not phones & set(re.findall(r"\+?\d[\d ()-]{6,}\d", html)), week


def test_quarantined_raw_values_never_reach_the_page(tables):
    quarantine = tables.quarantine.copy()
    quarantine.loc[quarantine.index[0], "raw_values"] = (
        '{"email": "leak.me@example.com", "name": "Leaky Person", "phone": "+1 555 999 0000"}'
    )
    # without the flags: their charts are beside the point here and take most of the time
    html = build_weekly_report(
        dataclasses.replace(tables, quarantine=quarantine, flags=tables.flags.iloc[0:0])
    ).html
    for text in ("leak.me@example.com", "Leaky Person", "555 999 0000"):
        assert text not in html


def test_tables_with_personal_columns_are_refused(tables):
    with pytest.raises(ValueError, match="personal data"):
        build_weekly_report(dataclasses.replace(tables, health=tables.health.assign(email="a@b")))


def test_every_page_is_self_contained_and_small(published_sample):
    for week in published_sample.weeks:
        path = report_path(published_sample.out_dir, week)
        assert external_references(path.read_text(encoding="utf-8")) == [], week
        assert path.stat().size < 3_000_000


def test_a_week_without_campaigns_or_flags_still_has_every_section(tables):
    empty = dataclasses.replace(
        tables,
        health=tables.health.iloc[0:0],
        previous_health=pd.DataFrame(),
        totals=tables.totals.iloc[0:0],
        weekly=tables.weekly.iloc[0:0],
        daily=tables.daily.iloc[0:0],
        flags=tables.flags.iloc[0:0],
        quarantine=pd.DataFrame(),
        delivery_days=(),
    )
    page = soup(build_weekly_report(empty).html)
    for section in SECTIONS:
        assert page.select_one(f"section#{section}") is not None
    assert page.select("#explorer-table tbody tr") == []
    assert "No critical or high flag this week" in " ".join(
        page.select_one("#anomalies").text.split()
    )
    assert page.select_one("#quarantine-week")["data-rows"] == "0"


def test_pages_built_in_worker_processes_are_the_pages_of_one_process(
    published_sample, monkeypatch
):
    from campaign_pipeline.report import build as build_module
    from campaign_pipeline.report import build_weekly_reports

    weeks = list(published_sample.weeks)
    monkeypatch.setattr(build_module, "MIN_PAGES_PER_PROCESS", 2)  # a cost rule, not a result
    assert len(weeks) >= 2 * 2  # enough to share out to two processes
    pools = []
    real = build_module.map_in_processes

    def recorded(work, arguments, processes):
        pools.append(processes)
        yield from real(work, arguments, processes)

    monkeypatch.setattr(build_module, "map_in_processes", recorded)
    shared = [r.html for r in build_weekly_reports(published_sample.out_dir, weeks, 2)]
    assert pools == [2]
    alone = [r.html for r in build_weekly_reports(published_sample.out_dir, weeks, 1)]
    assert pools == [2]  # one process: no pool
    assert shared == alone
    assert shared == [report_path(published_sample.out_dir, w).read_text() for w in weeks]


def test_the_loader_reads_only_what_the_page_shows(published_sample, week, tables):
    """Daily rows and earlier weeks are read for the flagged campaigns only, the week's
    delivery days from the date and has_delivery columns of the week's daily table: the page
    is the one built from every row of the 28 days and the 9 weeks."""
    out = published_sample.out_dir
    flagged = set(tables.flags["campaign_id"])
    assert 0 < len(flagged) < len(tables.health)  # some campaigns are left out of the reads

    def weeks_of(table, first):
        weeks = [shift(week, k) for k in range(first, 1)]
        frames = [
            week_table(out, table, w) for w in weeks if (out / table / f"{w}.parquet").exists()
        ]
        return pd.concat([f for f in frames if len(f)], ignore_index=True)

    whole_daily = weeks_of("daily_campaign_metrics", -3)
    whole_weekly = weeks_of("weekly_campaign_metrics", -8)
    assert set(tables.daily["campaign_id"]) == flagged
    pd.testing.assert_frame_equal(
        tables.daily,
        whole_daily[whole_daily["campaign_id"].isin(flagged)].reset_index(drop=True),
    )
    this_week = whole_weekly["week_start"] == pd.Timestamp(week)
    pd.testing.assert_frame_equal(
        tables.weekly,
        whole_weekly[this_week | whole_weekly["campaign_id"].isin(flagged)].reset_index(drop=True),
    )
    delivered = whole_daily[
        whole_daily["has_delivery"] & (whole_daily["date"] >= pd.Timestamp(week))
    ]["date"]
    assert list(tables.delivery_days) == sorted(delivered.unique())
    whole = dataclasses.replace(tables, daily=whole_daily, weekly=whole_weekly)
    assert build_weekly_report(whole).html == build_weekly_report(tables).html
