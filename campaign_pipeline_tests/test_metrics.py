"""Metrics on tiny hand-built tables; every expected number is worked out in a comment.

Builders below produce frames with the validated layer's dtypes (ids as str, days as
datetime64 midnights, numbers float64 with NaN = unknown).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline import metrics as m
from campaign_pipeline_tests.builders import (
    NO_CHANGES,
    make_campaigns,
    make_changes,
    make_insights,
    make_leads,
)

NaN = np.nan
D = pd.Timestamp
# Weeks used throughout (Mondays): W1 = 2024-01-01, W2 = 2024-01-08, W3 = 2024-01-15.
W1, W2, W3 = D("2024-01-01"), D("2024-01-08"), D("2024-01-15")


def one(frame: pd.DataFrame, **keys) -> pd.Series:
    """The single row of ``frame`` matching ``keys``."""
    mask = pd.Series(True, index=frame.index)
    for column, value in keys.items():
        mask &= frame[column] == value
    assert mask.sum() == 1, f"expected exactly one row for {keys}, got {int(mask.sum())}"
    return frame[mask].iloc[0]


def is_nan(value) -> bool:
    """Null: NaN, None, NaT, or pd.NA (a count held as Int64 that was not reported)."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or value is pd.NaT
        or value is pd.NA
    )


# ---------------------------------------------------------------------------------------
# 1. lead_events
# ---------------------------------------------------------------------------------------


def events_by_lead(leads, changes, **kwargs) -> pd.DataFrame:
    return m.lead_events(leads, changes, **kwargs).set_index("lead_id")


def test_conversion_day_is_first_change_into_a_converted_status_even_with_unsorted_history():
    leads = make_leads([("L1", "C1", "DONE_DEAL", "2024-01-02", NaN)])
    # Given out of order: NEW->QUALIFIED on the 5th is the entry; QUALIFIED->DONE_DEAL on the
    # 9th is a move inside the converted set and must not move the conversion day.
    changes = make_changes(
        [
            ("L1", "QUALIFIED", "DONE_DEAL", "2024-01-09 08:00"),
            ("L1", "NEW", "QUALIFIED", "2024-01-05 17:30"),
            ("L1", None, "NEW", "2024-01-02 09:00"),
        ]
    )
    row = events_by_lead(leads, changes).loc["L1"]
    assert bool(row["is_converted"])
    assert row["converted_date"] == D("2024-01-05")  # the day, time dropped
    assert row["conversion_source"] == "status_change"


def test_lead_without_history_converts_on_added_date():
    leads = make_leads([("L1", "C1", "QUALIFIED", "2024-01-03", NaN)])
    row = events_by_lead(leads, NO_CHANGES).loc["L1"]
    assert bool(row["is_converted"])
    assert row["converted_date"] == D("2024-01-03")
    assert row["conversion_source"] == "added_date"


def test_history_that_starts_already_converted_falls_back_to_added_date():
    # Only a move within the converted set is recorded: the entry predates the export.
    leads = make_leads([("L1", "C1", "DONE_DEAL", "2024-01-03", NaN)])
    changes = make_changes([("L1", "QUALIFIED", "DONE_DEAL", "2024-01-12 10:00")])
    row = events_by_lead(leads, changes).loc["L1"]
    assert row["converted_date"] == D("2024-01-03")
    assert row["conversion_source"] == "added_date"


@pytest.mark.parametrize("file_order", [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]])
def test_broken_chain_counts_first_observed_converted_change(file_order):
    # NEW->CONTACTED on the 4th, then QUALIFIED->DONE_DEAL on the 8th (CONTACTED->QUALIFIED is
    # missing). The lead was outside the set after the 4th, so the 8th is the first observed
    # entry; added_date (2nd) would be before a moment it was known not converted. The
    # previous change is found by time per lead, whatever the file order and other leads' rows.
    leads = make_leads(
        [("L1", "C1", "DONE_DEAL", "2024-01-02", NaN), ("L2", "C1", "DONE_DEAL", "2024-01-02", NaN)]
    )
    rows = [
        ("L1", "NEW", "CONTACTED", "2024-01-04 10:00"),
        ("L2", "QUALIFIED", "DONE_DEAL", "2024-01-05 10:00"),  # L2: starts converted -> added_date
        ("L1", "QUALIFIED", "DONE_DEAL", "2024-01-08 10:00"),
        ("L2", "NEW", "CONTACTED", "2024-01-06 10:00"),  # after L2's only converted change
    ]
    ev = events_by_lead(leads, make_changes([rows[i] for i in file_order]))
    assert ev.loc["L1", "converted_date"] == D("2024-01-08")
    assert ev.loc["L2", "converted_date"] == D("2024-01-02")


def test_current_status_decides_conversion_not_past_history():
    # Reached QUALIFIED once, then LOST: not converted today, no conversion day, no revenue.
    leads = make_leads([("L1", "C1", "LOST", "2024-01-02", 500.0)])
    changes = make_changes(
        [
            ("L1", "NEW", "QUALIFIED", "2024-01-03 10:00"),
            ("L1", "QUALIFIED", "LOST", "2024-01-06 10:00"),
        ]
    )
    row = events_by_lead(leads, changes).loc["L1"]
    assert not bool(row["is_converted"])
    assert row["converted_date"] is pd.NaT
    assert not bool(row["is_won"]) and row["revenue"] == 0.0
    assert row["revenue_date"] is pd.NaT


def test_reentry_after_drop_out_keeps_the_first_entry():
    leads = make_leads([("L1", "C1", "DONE_DEAL", "2024-01-01", NaN)])
    changes = make_changes(
        [
            ("L1", "NEW", "QUALIFIED", "2024-01-02 10:00"),  # first entry
            ("L1", "QUALIFIED", "LOST", "2024-01-03 10:00"),
            ("L1", "LOST", "DONE_DEAL", "2024-01-10 10:00"),  # re-entry, ignored
        ]
    )
    assert events_by_lead(leads, changes).loc["L1", "converted_date"] == D("2024-01-02")


def test_change_dated_before_added_date_is_clamped_to_added_date():
    leads = make_leads([("L1", "C1", "QUALIFIED", "2024-01-05", NaN)])
    changes = make_changes([("L1", None, "QUALIFIED", "2024-01-03 10:00")])
    assert events_by_lead(leads, changes).loc["L1", "converted_date"] == D("2024-01-05")


def test_won_and_revenue_rule():
    leads = make_leads(
        [
            ("WON", "C1", "DONE_DEAL", "2024-01-02", 1200.0),  # converted + value: won, 1200
            ("NOVALUE", "C1", "QUALIFIED", "2024-01-02", NaN),  # converted, no value: not won, 0
            ("LOSTVAL", "C1", "LOST", "2024-01-02", 800.0),  # value but not converted: not won, 0
            ("ZERO", "C1", "DONE_DEAL", "2024-01-02", 0.0),  # recorded 0: won, worth 0
        ]
    )
    changes = make_changes([("WON", "NEW", "DONE_DEAL", "2024-01-09 12:00")])
    ev = events_by_lead(leads, changes)
    assert ev["is_won"].to_dict() == {"WON": True, "NOVALUE": False, "LOSTVAL": False, "ZERO": True}
    assert ev["revenue"].to_dict() == {"WON": 1200.0, "NOVALUE": 0.0, "LOSTVAL": 0.0, "ZERO": 0.0}
    assert ev.loc["WON", "revenue_date"] == D("2024-01-09")  # = converted_date
    assert ev.loc["NOVALUE", "revenue_date"] is pd.NaT


def test_leads_without_a_deal_value_column_have_unknown_revenue_not_zero():
    leads = make_leads(
        [
            ("WON", "C1", "DONE_DEAL", "2024-01-02", 1200.0),
            ("NEW", "C1", "NEW", "2024-01-02", NaN),
        ]
    )
    ev = events_by_lead(leads.drop(columns="deal_value"), NO_CHANGES)
    assert ev["revenue"].isna().all()  # old code: KeyError 'deal_value'
    assert not ev["is_won"].any() and ev["revenue_date"].isna().all()
    assert ev.loc["WON", "is_converted"]  # conversion does not depend on deal values
    # with the column, a converted lead with a blank deal_value is not won and adds 0
    blank = events_by_lead(leads.assign(deal_value=NaN), NO_CHANGES)
    assert blank["revenue"].to_dict() == {"WON": 0.0, "NEW": 0.0}


def test_converted_statuses_are_configurable_and_normalized():
    leads = make_leads(
        [
            ("L1", "C1", "QUALIFIED", "2024-01-02", NaN),
            ("L2", "C1", "DONE_DEAL", "2024-01-02", NaN),
        ]
    )
    ev = events_by_lead(leads, NO_CHANGES, converted_statuses=(" done_deal ",))
    assert ev["is_converted"].to_dict() == {"L1": False, "L2": True}


def test_lead_events_has_one_row_per_lead():
    leads = make_leads([(f"L{i}", "C1", "NEW", "2024-01-02", NaN) for i in range(5)])
    changes = make_changes([("L1", None, "NEW", "2024-01-02 10:00")] * 3)  # re-delivered history
    ev = m.lead_events(leads, changes)
    assert list(ev["lead_id"]) == [f"L{i}" for i in range(5)]


def test_lead_events_equal_with_arrow_text_and_with_python_strings():
    """Leads' and changes' ids are matched by sorting their text: Arrow-backed columns (as the
    asset reads them) and Python strings give the same events, a change of an unknown lead
    or without a lead id never dates a lead, and a lead id that sorts between others keeps
    its own history."""
    leads = make_leads(
        [
            ("L2", "C1", "QUALIFIED", "2024-01-02", 10.0),
            ("L10", "C1", "DONE_DEAL", "2024-01-02", NaN),
            ("L1", "C2", "NEW", "2024-01-03", NaN),
            ("L3", "C2", "QUALIFIED", "2024-01-03", NaN),
        ]
    )
    changes = make_changes(
        [
            ("L10", "NEW", "QUALIFIED", "2024-01-06 10:00"),
            ("L2", "NEW", "QUALIFIED", "2024-01-05 10:00"),
            ("L9", "NEW", "QUALIFIED", "2024-01-04 10:00"),  # not a lead
            (None, "NEW", "QUALIFIED", "2024-01-03 10:00"),
            ("L2", "QUALIFIED", "NEW", "2024-01-07 10:00"),
            ("L2", "NEW", "QUALIFIED", "2024-01-09 10:00"),
        ]
    )
    python = m.lead_events(leads, changes)
    as_arrow = m.lead_events(
        leads.astype({c: "string[pyarrow]" for c in ["lead_id", "campaign_id", "lead_status"]}),
        changes.astype({c: "string[pyarrow]" for c in ["lead_id", "old_status", "new_status"]}),
    )
    pd.testing.assert_frame_equal(
        as_arrow.astype({"lead_id": object, "campaign_id": object, "lead_status": object}),
        python,
    )
    converted = python.set_index("lead_id")["converted_date"]
    assert converted.to_dict() == {
        "L2": D("2024-01-05"),
        "L10": D("2024-01-06"),
        "L1": pd.NaT,
        "L3": D("2024-01-03"),  # no history of its own: its added_date
    }


# ---------------------------------------------------------------------------------------
# 2. daily_campaign_metrics
# ---------------------------------------------------------------------------------------


def daily_from(insights, leads=None, changes=None, campaigns=None, **window) -> pd.DataFrame:
    leads = leads if leads is not None else make_leads([])
    events = m.lead_events(leads, changes if changes is not None else NO_CHANGES)
    ids = sorted(set(insights["campaign_id"]) | set(leads["campaign_id"]))
    return m.daily_campaign_metrics(
        insights, events, campaigns if campaigns is not None else make_campaigns(*ids), **window
    )


def test_daily_rates_hand_computed():
    insights = make_insights([("C1", "2024-01-03", 50.0, 2000, 40, 4)])
    # 5 leads added on the 3rd, 2 of them converted the same day (no history), one won at 150.
    leads = make_leads(
        [(f"L{i}", "C1", "NEW", "2024-01-03", NaN) for i in range(3)]
        + [
            ("Q1", "C1", "QUALIFIED", "2024-01-03", NaN),
            ("D1", "C1", "DONE_DEAL", "2024-01-03", 150.0),
        ]
    )
    row = one(daily_from(insights, leads), campaign_id="C1", date=D("2024-01-03"))
    assert (row["leads"], row["converted_leads"], row["won_leads"], row["revenue"]) == (
        5,
        2,
        1,
        150.0,
    )
    assert row["ctr"] == pytest.approx(0.02)  # 40 / 2000
    assert row["cpc"] == pytest.approx(1.25)  # 50 / 40
    assert row["cpm"] == pytest.approx(25.0)  # 1000 * 50 / 2000
    assert row["cpa"] == pytest.approx(12.5)  # 50 / 4
    assert row["cpl"] == pytest.approx(10.0)  # 50 / 5
    assert row["conversion_rate"] == pytest.approx(0.1)  # 4 / 40
    assert row["lead_conversion_rate"] == pytest.approx(0.4)  # 2 / 5
    assert row["roas"] == pytest.approx(3.0)  # 150 / 50
    assert (
        row["platform"] == "Facebook"
        and row["user_id"] == "user_C1"
        and row["project_name"] == "project_C1"
    )


def test_zero_denominators_give_nan_not_zero_or_inf():
    insights = make_insights(
        [
            ("C1", "2024-01-03", 0.0, 0, 0, 0),  # nothing delivered: every rate undefined
            ("C2", "2024-01-03", 10.0, 500, 0, 0),  # spend and impressions but no clicks
        ]
    )
    leads = make_leads(
        [("D1", "C1", "DONE_DEAL", "2024-01-03", 90.0)]
    )  # revenue on a zero-spend day
    daily = daily_from(insights, leads)
    rates = list(m.RATE_NAMES)
    assert np.isfinite(daily[rates].to_numpy(dtype=float)[~daily[rates].isna().to_numpy()]).all()

    c1 = one(daily, campaign_id="C1")
    for rate in ("ctr", "cpc", "cpm", "cpa", "conversion_rate", "roas"):
        assert is_nan(c1[rate]), rate  # 0/0 and 90/0 are undefined
    assert c1["cpl"] == 0.0  # 0 spend / 1 lead is a real, defined 0
    assert c1["lead_conversion_rate"] == 1.0

    c2 = one(daily, campaign_id="C2")
    assert (
        is_nan(c2["cpc"]) and is_nan(c2["cpa"]) and is_nan(c2["conversion_rate"])
    )  # /0 clicks, /0 conversions
    assert c2["ctr"] == 0.0 and c2["cpm"] == pytest.approx(20.0)  # 0/500 and 1000*10/500
    assert is_nan(c2["cpl"]) and is_nan(c2["lead_conversion_rate"])  # no leads
    assert c2["roas"] == 0.0  # 0 revenue / 10 spend


def test_outer_join_keeps_lead_only_and_delivery_only_days():
    insights = make_insights([("C1", "2024-01-03", 20.0, 1000, 10, 1)])
    leads = make_leads(
        [("L1", "C1", "NEW", "2024-01-04", NaN), ("L2", "C2", "NEW", "2024-01-03", NaN)]
    )
    daily = daily_from(insights, leads)
    assert set(zip(daily["campaign_id"], daily["date"])) == {
        ("C1", D("2024-01-03")),
        ("C1", D("2024-01-04")),
        ("C2", D("2024-01-03")),
    }

    delivery_only = one(daily, campaign_id="C1", date=D("2024-01-03"))
    assert bool(delivery_only["has_delivery"]) and delivery_only["leads"] == 0
    assert is_nan(delivery_only["cpl"]) and is_nan(delivery_only["lead_conversion_rate"])

    for lead_only in (
        one(daily, campaign_id="C1", date=D("2024-01-04")),
        one(daily, campaign_id="C2"),
    ):
        assert not bool(lead_only["has_delivery"]) and lead_only["leads"] == 1
        for column in ("spend", "impressions", "clicks", "conversions", "cpl", "ctr", "roas"):
            assert is_nan(lead_only[column]), column  # unknown, not zero
    assert daily["leads"].dtype == "int64" and daily["converted_leads"].dtype == "int64"


def test_nan_impressions_make_only_impression_rates_unknown():
    insights = make_insights([("C1", "2024-01-03", 30.0, NaN, 15, 3)])
    row = one(daily_from(insights), campaign_id="C1")
    assert is_nan(row["impressions"]) and is_nan(row["ctr"]) and is_nan(row["cpm"])
    assert row["cpc"] == pytest.approx(2.0)  # 30 / 15
    assert row["conversion_rate"] == pytest.approx(0.2)  # 3 / 15


def test_later_conversion_counts_on_its_day_and_lead_on_added_day():
    insights = make_insights(
        [("C1", "2024-01-03", 10.0, 100, 5, 1), ("C1", "2024-01-10", 10.0, 100, 5, 1)]
    )
    leads = make_leads([("L1", "C1", "DONE_DEAL", "2024-01-03", 400.0)])
    changes = make_changes([("L1", "NEW", "DONE_DEAL", "2024-01-10 15:00")])
    daily = daily_from(insights, leads, changes)
    added = one(daily, date=D("2024-01-03"))
    converted = one(daily, date=D("2024-01-10"))
    assert (added["leads"], added["converted_leads"], added["revenue"]) == (1, 0, 0.0)
    assert (converted["leads"], converted["converted_leads"], converted["revenue"]) == (0, 1, 400.0)
    assert converted["roas"] == pytest.approx(40.0)  # 400 / 10
    assert is_nan(converted["lead_conversion_rate"])  # 1 conversion / 0 leads that day: undefined

    weekly = m.weekly_campaign_metrics(daily, make_campaigns("C1")).set_index("week_start")
    assert (weekly.loc[W1, "leads"], weekly.loc[W1, "converted_leads"]) == (1, 0)
    assert (weekly.loc[W2, "leads"], weekly.loc[W2, "converted_leads"]) == (0, 1)
    assert weekly.loc[W1, "revenue"] == 0.0 and weekly.loc[W2, "revenue"] == 400.0


def _three_week_fixture():
    insights = make_insights(
        [
            ("C1", "2023-12-31", 5.0, 50, 1, 0),  # Sunday before W1
            ("C1", "2024-01-01", 10.0, 100, 4, 1),  # W1 Monday
            ("C1", "2024-01-07", 12.0, 120, 6, 2),  # W1 Sunday
            ("C1", "2024-01-08", 14.0, NaN, 7, 1),  # W2 Monday
            ("C2", "2024-01-10", 30.0, 600, 12, 3),
            ("C1", "2024-01-14", 9.0, 90, 3, 0),  # W2 Sunday
            ("C2", "2024-01-15", 8.0, 80, 2, 0),  # W3 Monday
        ]
    )
    leads = make_leads(
        [
            ("L1", "C1", "DONE_DEAL", "2024-01-05", 300.0),  # added W1, converts W2 (history)
            ("L2", "C1", "QUALIFIED", "2024-01-09", NaN),  # no history: converts on added day (W2)
            ("L3", "C2", "NEW", "2024-01-14", NaN),  # lead-only day, Sunday of W2
            ("L4", "C2", "DONE_DEAL", "2024-01-02", 50.0),  # added W1, converts W3
            ("L5", "C1", "NEW", "2024-01-20", NaN),  # W3 Saturday
        ]
    )
    changes = make_changes(
        [
            ("L1", "NEW", "DONE_DEAL", "2024-01-11 09:00"),
            ("L4", "NEW", "QUALIFIED", "2024-01-16 09:00"),
        ]
    )
    return insights, leads, changes


def test_restricting_to_one_week_gives_exactly_that_weeks_rows_unchanged():
    insights, leads, changes = _three_week_fixture()
    full = daily_from(insights, leads, changes)
    week = daily_from(insights, leads, changes, start=W2, end=W2 + pd.Timedelta(days=6))
    expected = full[(full["date"] >= W2) & (full["date"] <= D("2024-01-14"))].reset_index(drop=True)
    assert len(expected) == 6  # C1: 8th, 9th (L2), 11th (L1 converts), 14th; C2: 10th, 14th
    pd.testing.assert_frame_equal(week, expected)
    # and the weeks partition the unrestricted run
    parts = [
        daily_from(insights, leads, changes, start=s, end=s + pd.Timedelta(days=6))
        for s in (W1 - pd.Timedelta(days=7), W1, W2, W3)
    ]
    assert sum(len(p) for p in parts) == len(full)


def test_string_and_open_window_bounds():
    insights, leads, changes = _three_week_fixture()
    full = daily_from(insights, leads, changes)
    since = daily_from(insights, leads, changes, start="2024-01-15")
    assert since["date"].min() == W3
    pd.testing.assert_frame_equal(since, full[full["date"] >= W3].reset_index(drop=True))


# ---------------------------------------------------------------------------------------
# 3. weekly_campaign_metrics
# ---------------------------------------------------------------------------------------


def test_weekly_rates_are_ratios_of_sums_not_means_of_daily_rates():
    insights = make_insights(
        [
            ("C1", "2024-01-02", 5.0, 100, 10, 1),  # ctr 0.10, cpc 0.5
            ("C1", "2024-01-03", 90.0, 900, 9, 0),  # ctr 0.01, cpc 10
        ]
    )
    daily = daily_from(insights)
    week = one(m.weekly_campaign_metrics(daily, make_campaigns("C1")), campaign_id="C1")
    assert daily["ctr"].mean() == pytest.approx(0.055)  # the wrong answer: (0.10 + 0.01) / 2
    assert week["ctr"] == pytest.approx(0.019)  # 19 / 1000
    assert daily["cpc"].mean() == pytest.approx(5.25)  # wrong: (0.5 + 10) / 2
    assert week["cpc"] == pytest.approx(5.0)  # 95 / 19
    assert week["cpm"] == pytest.approx(95.0)  # 1000 * 95 / 1000
    assert week["conversion_rate"] == pytest.approx(1 / 19)
    assert week["cpa"] == pytest.approx(95.0)  # 95 / 1
    assert (week["spend"], week["impressions"], week["clicks"], week["conversions"]) == (
        95.0,
        1000.0,
        19.0,
        1.0,
    )


def test_weekly_on_three_week_fixture():
    insights, leads, changes = _three_week_fixture()
    weekly = m.weekly_campaign_metrics(
        daily_from(insights, leads, changes), make_campaigns("C1", "C2")
    )
    assert list(zip(weekly["week_start"], weekly["campaign_id"])) == [
        (D("2023-12-25"), "C1"),
        (W1, "C1"),
        (W1, "C2"),
        (W2, "C1"),
        (W2, "C2"),
        (W3, "C1"),
        (W3, "C2"),
    ]

    c1w1 = one(weekly, week_start=W1, campaign_id="C1")
    # Monday 1st and Sunday 7th: spend 22, impressions 220, clicks 10, conversions 3; lead L1
    assert c1w1["days_active"] == 2
    assert (c1w1["spend"], c1w1["impressions"], c1w1["clicks"], c1w1["conversions"]) == (
        22.0,
        220.0,
        10.0,
        3.0,
    )
    assert (c1w1["leads"], c1w1["converted_leads"]) == (1, 0)
    assert c1w1["cpl"] == pytest.approx(22.0) and c1w1["lead_conversion_rate"] == 0.0

    c1w2 = one(weekly, week_start=W2, campaign_id="C1")
    # 8th: 14 spend, impressions unknown, 7 clicks, 1 conv; 14th: 9, 90, 3, 0.
    # leads: L2 (9th). converted: L2 (9th, added_date) + L1 (11th). won: L1 300.
    assert c1w2["days_active"] == 2
    assert (
        c1w2["spend"] == 23.0 and c1w2["impressions"] == 90.0 and not c1w2["impressions_complete"]
    )
    assert c1w2["ctr"] == pytest.approx(3 / 90)  # paired: only the 14th has both
    assert c1w2["cpm"] == pytest.approx(1000 * 9 / 90)  # paired: spend of the 14th only
    assert c1w2["cpc"] == pytest.approx(23 / 10)  # clicks known both days
    assert (c1w2["leads"], c1w2["converted_leads"], c1w2["won_leads"]) == (1, 2, 1)
    assert c1w2["lead_conversion_rate"] == pytest.approx(2.0)  # flow ratio: may exceed 1
    assert c1w2["revenue"] == 300.0 and c1w2["roas"] == pytest.approx(300 / 23)

    c2w2 = one(weekly, week_start=W2, campaign_id="C2")
    assert c2w2["days_active"] == 1  # the 14th has a lead but no insights row
    assert (c2w2["leads"], c2w2["spend"], c2w2["cpl"]) == (1, 30.0, 30.0)

    c2w1 = one(weekly, week_start=W1, campaign_id="C2")  # only lead L4 added: no delivery
    assert c2w1["days_active"] == 0 and is_nan(c2w1["spend"]) and is_nan(c2w1["cpl"])
    assert c2w1["leads"] == 1 and bool(c2w1["impressions_complete"])  # vacuously complete

    c2w3 = one(weekly, week_start=W3, campaign_id="C2")  # L4 converts on the 16th, won 50
    assert (c2w3["converted_leads"], c2w3["revenue"], c2w3["spend"]) == (1, 50.0, 8.0)
    assert c2w3["roas"] == pytest.approx(50 / 8)
    assert c2w3[["user_id", "project_name", "platform"]].tolist() == [
        "user_C2",
        "project_C2",
        "Facebook",
    ]


def test_weekly_impressions_unknown_every_day_is_nan_not_zero():
    insights = make_insights(
        [("C1", "2024-01-02", 10.0, NaN, 5, 1), ("C1", "2024-01-03", 10.0, NaN, 5, 1)]
    )
    week = one(
        m.weekly_campaign_metrics(daily_from(insights), make_campaigns("C1")), campaign_id="C1"
    )
    assert is_nan(week["impressions"]) and is_nan(week["ctr"]) and is_nan(week["cpm"])
    assert not week["impressions_complete"] and week["clicks_complete"]
    assert week["cpc"] == pytest.approx(2.0)  # 20 / 10


def test_weekly_survives_a_parquet_round_trip(tmp_path):
    insights, leads, changes = _three_week_fixture()
    daily = daily_from(insights, leads, changes)
    daily.to_parquet(tmp_path / "daily.parquet")
    reread = pd.read_parquet(tmp_path / "daily.parquet")
    campaigns = make_campaigns("C1", "C2")
    pd.testing.assert_frame_equal(
        m.weekly_campaign_metrics(reread, campaigns), m.weekly_campaign_metrics(daily, campaigns)
    )


# ---------------------------------------------------------------------------------------
# 4. week_over_week
# ---------------------------------------------------------------------------------------


def _weekly(rows: list[tuple]) -> pd.DataFrame:
    """Weekly table from (campaign_id, day, spend, impressions, clicks, conversions, n_leads)."""
    insights = make_insights([r[:6] for r in rows])
    leads = make_leads(
        [(f"{r[0]}-{r[1]}-{i}", r[0], "NEW", r[1], NaN) for r in rows for i in range(r[6])]
    )
    daily = daily_from(insights, leads)
    return m.weekly_campaign_metrics(daily, make_campaigns(*sorted(set(insights["campaign_id"]))))


def test_week_over_week_against_previous_week():
    weekly = _weekly(
        [
            ("C1", "2024-01-02", 100.0, 1000, 20, 2, 4),  # W1: ctr 0.02, cpl 25
            ("C1", "2024-01-09", 150.0, 1000, 30, 3, 2),  # W2: ctr 0.03, cpl 75
        ]
    )
    w2 = one(m.week_over_week(weekly), week_start=W2)
    assert w2["prev_week_status"] == "present"
    assert (w2["spend_prev"], w2["spend_wow_abs"], w2["spend_wow_pct"]) == (
        100.0,
        50.0,
        pytest.approx(0.5),
    )
    assert (w2["leads_prev"], w2["leads_wow_abs"], w2["leads_wow_pct"]) == (
        4.0,
        -2.0,
        pytest.approx(-0.5),
    )
    assert w2["ctr_prev"] == pytest.approx(0.02) and w2["ctr_wow_abs"] == pytest.approx(0.01)
    assert w2["ctr_wow_pct"] == pytest.approx(0.5)  # (0.03 - 0.02) / 0.02
    assert w2["cpl_wow_pct"] == pytest.approx(2.0)  # (75 - 25) / 25
    w1 = one(m.week_over_week(weekly), week_start=W1)
    assert w1["prev_week_status"] == "unknown"
    assert all(is_nan(w1[f"{metric}_prev"]) for metric in m.WOW_METRICS)


def test_week_over_week_compares_calendar_weeks_across_a_gap():
    weekly = _weekly(
        [
            ("C1", "2024-01-02", 100.0, 1000, 20, 2, 4),  # W1
            ("C1", "2024-01-16", 80.0, 800, 16, 1, 3),  # W3 (no C1 row in W2)
            ("C2", "2024-01-09", 10.0, 100, 1, 0, 0),  # W2: makes W2 part of the covered weeks
        ]
    )
    c1w3 = one(m.week_over_week(weekly), campaign_id="C1", week_start=W3)
    assert c1w3["prev_week_status"] == "no_activity"
    # NOT W1's values (100 spend, 4 leads): the previous calendar week had nothing
    assert is_nan(c1w3["spend_prev"]) and is_nan(c1w3["spend_wow_abs"])  # no spend reported
    assert c1w3["leads_prev"] == 0.0 and c1w3["leads_wow_abs"] == 3.0
    assert is_nan(c1w3["leads_wow_pct"])  # growth from 0 has no percentage
    assert c1w3["revenue_prev"] == 0.0 and is_nan(c1w3["ctr_prev"])


def test_week_over_week_knows_the_weeks_it_is_told_an_empty_one_included():
    """A block whose first week read had no row at all (a gap week, stored and empty): with
    the known weeks given, the week after it compares with no activity, as it does when the
    same weeks are read inside a longer block; a week not known stays unknown."""
    weekly = _weekly([("C1", "2024-01-16", 80.0, 800, 16, 1, 3)])  # W3 only; W2 stored, empty
    inferred = one(m.week_over_week(weekly), week_start=W3)
    assert inferred["prev_week_status"] == "unknown"  # W2 not in what `weekly` shows
    told = one(m.week_over_week(weekly, known_weeks=["2024-01-08", "2024-01-15"]), week_start=W3)
    assert told["prev_week_status"] == "no_activity"
    assert told["leads_prev"] == 0.0 and told["leads_wow_abs"] == 3.0
    not_told = one(m.week_over_week(weekly, known_weeks=["2024-01-15"]), week_start=W3)
    assert not_told["prev_week_status"] == "unknown" and is_nan(not_told["leads_prev"])


def test_week_over_week_zero_previous_gives_nan_pct():
    weekly = _weekly(
        [
            ("C1", "2024-01-02", 0.0, 0, 0, 0, 0),
            ("C1", "2024-01-09", 40.0, 400, 4, 0, 2),
        ]
    )
    w2 = one(m.week_over_week(weekly), week_start=W2)
    assert w2["spend_prev"] == 0.0 and w2["spend_wow_abs"] == 40.0 and is_nan(w2["spend_wow_pct"])
    assert is_nan(w2["ctr_prev"]) and is_nan(w2["ctr_wow_abs"])  # 0/0 last week


# ---------------------------------------------------------------------------------------
# 5. weekly_totals
# ---------------------------------------------------------------------------------------


def test_weekly_totals_overall_and_per_platform():
    insights = make_insights(
        [
            ("FB1", "2024-01-02", 10.0, 1000, 10, 1),  # ctr 0.01
            ("FB2", "2024-01-02", 90.0, 100, 10, 2),  # ctr 0.10
            ("GA1", "2024-01-03", 50.0, 500, 5, 1),
            ("GA2", "2024-01-03", 20.0, NaN, 4, 0),  # impressions unknown: out of ctr and cpm
        ]
    )
    leads = make_leads(
        [
            ("L1", "FB1", "NEW", "2024-01-02", NaN),
            ("L2", "GA1", "DONE_DEAL", "2024-01-04", 700.0),
            ("L3", "GA3", "NEW", "2024-01-05", NaN),
        ]
    )  # GA3: leads only, no delivery
    platforms = {
        "FB1": "Facebook",
        "FB2": "Facebook",
        "GA1": "Google Ads",
        "GA2": "Google Ads",
        "GA3": "Google Ads",
    }
    campaigns = make_campaigns(*platforms, platforms=platforms)
    events = m.lead_events(leads, NO_CHANGES)
    weekly = m.weekly_campaign_metrics(
        m.daily_campaign_metrics(insights, events, campaigns), campaigns
    )

    overall = m.weekly_totals(weekly)
    assert len(overall) == 1
    total = overall.iloc[0]
    assert total["week_start"] == W1
    assert (
        total["n_campaigns"],
        total["n_campaigns_delivering"],
        total["campaign_days_active"],
    ) == (5, 4, 4)
    assert (total["spend"], total["impressions"], total["clicks"], total["leads"]) == (
        170.0,
        1600.0,
        29.0,
        3,
    )
    assert total["ctr"] == pytest.approx(25 / 1600)  # GA2 excluded: (10+10+5)/(1000+100+500)
    assert total["cpm"] == pytest.approx(1000 * 150 / 1600)
    assert total["cpc"] == pytest.approx(170 / 29)
    assert total["cpl"] == pytest.approx(170 / 3)
    assert total["roas"] == pytest.approx(700 / 170)
    assert total["lead_conversion_rate"] == pytest.approx(1 / 3)
    assert not total["impressions_complete"] and total["clicks_complete"]

    by_platform = m.weekly_totals(weekly, by="platform").set_index("platform")
    fb, ga = by_platform.loc["Facebook"], by_platform.loc["Google Ads"]
    assert fb["ctr"] == pytest.approx(20 / 1100)  # not mean(0.01, 0.10) = 0.055
    assert (fb["n_campaigns"], fb["spend"], fb["cpl"]) == (2, 100.0, pytest.approx(100.0))
    assert (ga["n_campaigns"], ga["n_campaigns_delivering"], ga["spend"]) == (3, 2, 70.0)
    assert ga["ctr"] == pytest.approx(5 / 500) and ga["cpc"] == pytest.approx(70 / 9)
    assert ga["cpl"] == pytest.approx(70 / 2) and ga["roas"] == pytest.approx(10.0)
    assert fb["impressions_complete"] and not ga["impressions_complete"]


def _unreported_revenue_tables():
    """Two weeks of C1 from leads without a deal_value column; C2 only delivers in week 2."""
    insights = make_insights(
        [
            ("C1", "2024-01-02", 100.0, 1000, 10, 1),
            ("C1", "2024-01-09", 50.0, 1000, 10, 1),
            ("C2", "2024-01-10", 30.0, 500, 5, 0),  # a delivery-only day: no lead event
        ]
    )
    leads = make_leads(
        [
            ("L1", "C1", "DONE_DEAL", "2024-01-02", NaN),
            ("L2", "C1", "NEW", "2024-01-09", NaN),
        ]
    ).drop(columns="deal_value")
    campaigns = make_campaigns("C1", "C2")
    events = m.lead_events(leads, NO_CHANGES)
    daily = m.daily_campaign_metrics(insights, events, campaigns, revenue_reported=False)
    return daily, campaigns


def test_unreported_revenue_is_null_in_every_table_not_zero():
    daily, campaigns = _unreported_revenue_tables()
    assert daily["spend"].gt(0).all()
    assert daily["revenue"].isna().all() and daily["roas"].isna().all()

    weekly = m.week_over_week(m.weekly_campaign_metrics(daily, campaigns))
    assert weekly["revenue"].isna().all() and weekly["roas"].isna().all()
    assert one(weekly, campaign_id="C1", week_start=W1)["converted_leads"] == 1
    assert weekly["revenue_prev"].isna().all() and weekly["roas_prev"].isna().all()

    for totals in (m.weekly_totals(weekly), m.weekly_totals(weekly, by="platform")):
        assert totals["spend"].gt(0).all()
        assert totals["revenue"].isna().all() and totals["roas"].isna().all()

    lifetime = m.campaign_period_summary(daily, campaigns)
    assert lifetime["total_spend"].gt(0).all()
    assert lifetime["revenue"].isna().all() and lifetime["roas"].isna().all()


def test_reported_revenue_of_a_week_without_activity_is_zero_and_unreported_unknown():
    rows = [("C1", "2024-01-02", 10.0, 100, 1, 0), ("C1", "2024-01-16", 10.0, 100, 1, 0)]
    rows += [("C2", "2024-01-09", 10.0, 100, 1, 0)]  # makes W2 a covered week
    insights = make_insights(rows)
    campaigns = make_campaigns("C1", "C2")
    events = m.lead_events(make_leads([]), NO_CHANGES)
    for reported, expected in ((True, 0.0), (False, None)):
        daily = m.daily_campaign_metrics(insights, events, campaigns, revenue_reported=reported)
        weekly = m.week_over_week(m.weekly_campaign_metrics(daily, campaigns))
        w3 = one(weekly, campaign_id="C1", week_start=W3)
        assert w3["prev_week_status"] == "no_activity"
        if expected is None:
            assert is_nan(w3["revenue_prev"]) and is_nan(w3["revenue"])
        else:
            assert w3["revenue_prev"] == expected and w3["revenue"] == 0.0
            assert w3["roas"] == 0.0  # known: nothing won on 10 spent


def test_weekly_totals_sums_match_daily_on_random_data():
    rng = np.random.default_rng(7)
    days = pd.date_range("2024-01-01", periods=28, freq="D")
    rows = []
    for cid in ("A", "B", "C"):
        for day in days[rng.random(len(days)) < 0.7]:
            impressions = float(rng.integers(100, 1000))
            clicks = float(rng.integers(0, 50))
            rows.append(
                (
                    cid,
                    day,
                    float(rng.integers(0, 100)),
                    impressions if rng.random() > 0.1 else NaN,
                    clicks,
                    float(rng.integers(0, clicks + 1)),
                )
            )
    insights = make_insights(rows)
    daily = daily_from(insights)
    totals = m.weekly_totals(
        m.weekly_campaign_metrics(daily, make_campaigns("A", "B", "C"))
    ).set_index("week_start")
    by_week = daily.groupby(m.week_start_of(daily["date"]))
    pd.testing.assert_series_equal(totals["spend"], by_week["spend"].sum(), check_names=False)
    pd.testing.assert_series_equal(totals["clicks"], by_week["clicks"].sum(), check_names=False)
    assert (totals["campaign_days_active"] == by_week.size()).all()
    assert (totals["ctr"].dropna() <= 1).all() and (totals["conversion_rate"].dropna() <= 1).all()


# ---------------------------------------------------------------------------------------
# 6. campaign_period_summary
# ---------------------------------------------------------------------------------------


def test_period_summary_window_vs_whole_history():
    insights, leads, changes = _three_week_fixture()
    daily = daily_from(insights, leads, changes)
    campaigns = make_campaigns("C1", "C2")

    lifetime = m.campaign_period_summary(daily, campaigns).set_index("campaign_id")
    c1 = lifetime.loc["C1"]
    # C1 insights: 31st (5), 1st (10), 7th (12), 8th (14), 14th (9) -> 50 over 5 days
    # leads: L1, L2, L5 = 3; converted: L1 (11th), L2 (9th) = 2; revenue 300 (L1)
    assert (c1["total_spend"], c1["days_active"], c1["total_leads"], c1["converted_leads"]) == (
        50.0,
        5,
        3,
        2,
    )
    assert c1["conversion_rate"] == pytest.approx(2 / 3)
    assert c1["cpl"] == pytest.approx(50 / 3)
    assert c1["leads_per_day"] == pytest.approx(3 / 5) and c1["spend_per_day"] == pytest.approx(
        10.0
    )
    assert c1["revenue"] == 300.0 and c1["roas"] == pytest.approx(6.0)
    assert c1[
        ["user_id", "project_name", "platform", "daily_budget", "campaign_name"]
    ].tolist() == ["user_C1", "project_C1", "Facebook", 50.0, "name C1"]

    window = m.campaign_period_summary(
        daily, campaigns, start="2024-01-08", end="2024-01-14"
    ).set_index("campaign_id")
    c1w = window.loc["C1"]
    # W2 only: spend 14 + 9 = 23 over 2 days; leads L2 = 1; converted L2 + L1 = 2 -> rate 2.0
    assert (c1w["total_spend"], c1w["days_active"], c1w["total_leads"], c1w["converted_leads"]) == (
        23.0,
        2,
        1,
        2,
    )
    assert c1w["conversion_rate"] == pytest.approx(2.0) and c1w["cpl"] == pytest.approx(23.0)
    assert c1w["revenue"] == 300.0 and c1w["roas"] == pytest.approx(300 / 23)
    c2w = window.loc["C2"]
    # C2 in W2: 10th (30 spend) + lead L3 on the 14th
    assert (c2w["total_spend"], c2w["days_active"], c2w["total_leads"], c2w["cpl"]) == (
        30.0,
        1,
        1,
        30.0,
    )


def test_period_summary_outer_cases_and_which_campaigns_appear():
    insights = make_insights(
        [
            ("SPEND", "2024-01-02", 40.0, 400, 8, 1),
            ("SPEND", "2024-01-03", 20.0, 200, 2, 0),
            ("OLD", "2023-11-01", 99.0, 990, 9, 1),  # outside the window
        ]
    )
    leads = make_leads(
        [("L1", "LEADS", "NEW", "2024-01-02", NaN), ("L2", "LEADS", "NEW", "2024-01-05", NaN)]
    )
    daily = daily_from(insights, leads)
    summary = m.campaign_period_summary(
        daily, make_campaigns("SPEND", "LEADS", "OLD", "IDLE"), start=W1, end=D("2024-01-07")
    ).set_index("campaign_id")
    assert sorted(summary.index) == [
        "LEADS",
        "SPEND",
    ]  # OLD had nothing in the window; IDLE nothing at all

    spend_only = summary.loc["SPEND"]
    assert (spend_only["total_spend"], spend_only["days_active"], spend_only["total_leads"]) == (
        60.0,
        2,
        0,
    )
    assert is_nan(spend_only["cpl"]) and is_nan(
        spend_only["conversion_rate"]
    )  # no leads: undefined
    assert spend_only["leads_per_day"] == 0.0 and spend_only["spend_per_day"] == 30.0
    assert spend_only["ctr"] == pytest.approx(10 / 600)

    leads_only = summary.loc["LEADS"]
    assert (
        is_nan(leads_only["total_spend"])
        and leads_only["days_active"] == 0
        and leads_only["total_leads"] == 2
    )
    for column in ("cpl", "leads_per_day", "spend_per_day", "roas"):
        assert is_nan(leads_only[column]), column
    assert leads_only["conversion_rate"] == 0.0  # 0 converted of 2 leads is a real 0


def test_lifetime_conversion_rate_never_exceeds_one():
    # Over the whole history every converted lead was also added in it.
    insights, leads, changes = _three_week_fixture()
    lifetime = m.campaign_period_summary(
        daily_from(insights, leads, changes), make_campaigns("C1", "C2")
    )
    assert (lifetime["conversion_rate"].dropna() <= 1).all()
    assert lifetime.set_index("campaign_id").loc["C2", "conversion_rate"] == pytest.approx(
        1 / 2
    )  # L4 of L3, L4


# ---------------------------------------------------------------------------------------
# Empty inputs
# ---------------------------------------------------------------------------------------


def test_empty_inputs_give_empty_tables_with_columns():
    campaigns = make_campaigns("C1")
    daily = daily_from(make_insights([]), make_leads([]), campaigns=campaigns)
    assert daily.empty and list(daily.columns) == m.DAILY_COLUMNS
    weekly = m.weekly_campaign_metrics(daily, campaigns)
    assert weekly.empty and list(weekly.columns) == m.WEEKLY_COLUMNS
    assert m.week_over_week(weekly).empty
    assert m.weekly_totals(weekly).empty and m.weekly_totals(weekly, by="platform").empty
    summary = m.campaign_period_summary(daily, campaigns)
    assert summary.empty and list(summary.columns) == m.SUMMARY_COLUMNS


def test_quarantine_by_week_places_rows_by_their_own_date_and_adds_real_amounts_only():
    def row(source, reason, **values):
        return {
            "source_file": source,
            "reason_code": reason,
            "raw_values": json.dumps({k: str(v) for k, v in values.items()}, sort_keys=True),
        }

    quarantine = pd.DataFrame(
        [
            row("insights.csv", "negative_spend", created_at="2024-01-02 10:00:00", spend=-4),
            row("insights.csv", "unknown_campaign", created_at="01/03/2024", spend="1,250.5"),
            row("insights.csv", "implausible_value", created_at="2024-01-03", spend="1e308"),
            row("insights.csv", "unparseable_date", created_at="yesterday", spend=9),
            row("campaign_leads.csv", "unknown_campaign", added_date="2024-01-09"),
            row("lead_status_changes.csv", "unknown_lead", created_at="2024-01-10"),
            row("campaigns.csv", "missing_key", created_at="2024-01-02"),
        ]
    )
    by_week = m.quarantine_by_week(quarantine, excluded_spend_reasons=("implausible_value",))
    assert by_week["week_start"].tolist() == [W1, W2]
    assert by_week["quarantined_rows"].tolist() == [3, 2]
    assert by_week["quarantined_spend"].tolist() == [-4 + 1250.5, 0.0]
    assert np.isfinite(by_week["quarantined_spend"]).all()
    assert m.quarantine_by_week(quarantine.iloc[0:0]).empty


@pytest.mark.parametrize(
    ("first", "last", "covered"),
    [
        ("2025-01-01", "2025-03-01", ("2025-01-06", "2025-01-12", 7)),
        ("2025-01-08", "2025-03-01", ("2025-01-08", "2025-01-12", 5)),
        ("2025-01-01", "2025-01-06", ("2025-01-06", "2025-01-06", 1)),
        ("2025-01-07", "2025-01-08", ("2025-01-07", "2025-01-08", 2)),
        ("2025-01-13", "2025-03-01", None),
    ],
)
def test_covered_days_are_the_weeks_days_inside_the_data_range(first, last, covered):
    found = m.covered_days(
        "2025-01-06", pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta("9h")
    )
    if covered is None:
        assert found is None
    else:
        assert found == (pd.Timestamp(covered[0]), pd.Timestamp(covered[1]), covered[2])


def test_with_data_range_puts_each_weeks_covered_days_on_its_rows():
    weeks = pd.to_datetime(["2024-12-30", "2025-01-06", "2025-01-06", "2025-01-27", "2025-02-03"])
    totals = pd.DataFrame({"week_start": weeks, "scope": ["all", "all", "x", "all", "all"]})
    out = m.with_data_range(totals, (pd.Timestamp("2025-01-02 10:00"), pd.Timestamp("2025-01-29")))
    day = pd.Timestamp
    # the first week from the data's first day; whole weeks their Monday to Sunday, on every
    # scope's row (not the data's whole range, which would move when later data arrive); the
    # last week to the data's last day; a week the range misses, null
    assert list(out["data_first_day"][:4]) == [
        day("2025-01-02"),
        *[day("2025-01-06")] * 2,
        day("2025-01-27"),
    ]
    assert list(out["data_last_day"][:4]) == [
        day("2025-01-05"),
        *[day("2025-01-12")] * 2,
        day("2025-01-29"),
    ]
    assert out[["data_first_day", "data_last_day"]].iloc[4].isna().all()
    assert m.with_data_range(totals, None)["data_first_day"].isna().all()
