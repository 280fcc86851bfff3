"""The metric contracts accept what metrics.py produces and reject each broken invariant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors
import pytest

from campaign_pipeline import metric_schemas as ms
from campaign_pipeline import metrics as m
from campaign_pipeline.schemas import validate_frame
from campaign_pipeline_tests.builders import (
    NO_CHANGES,
    make_campaigns,
    make_changes,
    make_insights,
    make_leads,
)

NaN = np.nan


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    insights = make_insights(
        [
            ("C1", "2024-01-02", 10.0, 1000, 10, 1),
            ("C1", "2024-01-03", 0.0, 0, 0, 0),  # zero denominators -> null rates
            ("C1", "2024-01-09", 30.0, NaN, 12, 2),  # unknown impressions
            ("C2", "2024-01-10", 5.0, 50, 5, 5),  # ctr 0.1, conversion_rate exactly 1
        ]
    )
    leads = make_leads(
        [
            ("L1", "C1", "DONE_DEAL", "2024-01-02", 250.0),
            ("L2", "C2", "QUALIFIED", "2024-01-04", NaN),  # lead-only day
            ("L3", "C2", "NEW", "2024-01-11", NaN),
        ]
    )
    changes = make_changes([("L1", "NEW", "DONE_DEAL", "2024-01-09 10:00")])
    campaigns = make_campaigns("C1", "C2", platforms={"C2": "Google Ads"})
    campaigns.loc[1, "campaign_name"] = None
    campaigns.loc[1, "daily_budget"] = NaN
    daily = m.daily_campaign_metrics(insights, m.lead_events(leads, changes), campaigns)
    weekly = m.week_over_week(m.weekly_campaign_metrics(daily, campaigns))
    totals = pd.concat(
        [
            m.weekly_totals(weekly).assign(scope="all"),
            m.weekly_totals(weekly, by="platform").rename(columns={"platform": "scope"}),
        ],
        ignore_index=True,
    )
    summary = m.campaign_period_summary(daily, campaigns)
    return {"daily": daily, "weekly": weekly, "totals": totals, "summary": summary}


MODELS = {
    "daily": ms.DailyCampaignMetrics,
    "weekly": ms.WeeklyCampaignMetrics,
    "totals": ms.WeeklyTotals,
    "summary": ms.CampaignPeriodSummary,
}


@pytest.mark.parametrize("table", sorted(MODELS))
def test_model_accepts_real_output(tables, table):
    validated = MODELS[table].validate(tables[table])
    assert len(validated) == len(tables[table]) > 0
    # checked with its text as Arrow strings, the frame comes back as the model returns it
    pd.testing.assert_frame_equal(validate_frame(MODELS[table], tables[table]), validated)


@pytest.mark.parametrize("table", sorted(set(MODELS) - {"totals"}))  # totals: no text column
def test_a_text_column_holding_numbers_goes_through_the_model_itself(tables, table):
    frame = tables[table].assign(campaign_id=range(len(tables[table])))
    coerced = validate_frame(MODELS[table], frame)
    pd.testing.assert_frame_equal(coerced, MODELS[table].validate(frame))
    assert coerced["campaign_id"].map(type).eq(str).all()  # the model's coercion to text


def test_week_over_week_model_accepts_real_output(tables):
    assert len(ms.WeekOverWeek.validate(tables["weekly"])) == len(tables["weekly"])


def test_models_accept_empty_tables():
    campaigns = make_campaigns("C1")
    daily = m.daily_campaign_metrics(
        make_insights([]), m.lead_events(make_leads([]), NO_CHANGES), campaigns
    )
    weekly = m.week_over_week(m.weekly_campaign_metrics(daily, campaigns))
    ms.DailyCampaignMetrics.validate(daily)
    ms.WeeklyCampaignMetrics.validate(weekly)
    ms.WeekOverWeek.validate(weekly)
    ms.WeeklyTotals.validate(m.weekly_totals(weekly))
    ms.CampaignPeriodSummary.validate(m.campaign_period_summary(daily, campaigns))


def _broken(frame: pd.DataFrame, row: int, **changes) -> pd.DataFrame:
    out = frame.copy()
    for column, value in changes.items():
        out[column] = out[column].astype(object) if value is None else out[column]
        out.loc[out.index[row], column] = value
    return out


def _assert_rejected(model, frame: pd.DataFrame, check_name: str | None = None):
    """Rejected by the model, and by `validate_frame` (text checked as Arrow strings)."""
    for validate in (model.validate, lambda f, lazy: validate_frame(model, f, lazy=lazy)):
        with pytest.raises(pandera.errors.SchemaErrors) as info:
            validate(frame, lazy=True)
        if check_name is not None:
            assert check_name in str(info.value), str(info.value)[:2000]


# (table, row, changes, check name expected in the error)
BREAKAGES = [
    ("daily", 0, {"ctr": 0.5}, "rates_match_sums"),  # not clicks / impressions
    ("daily", 1, {"cpc": 0.0}, "rates_match_sums"),  # 0 spend / 0 clicks must be null, not 0
    ("daily", 0, {"cpc": np.inf, "spend": np.inf}, "rates_finite"),
    ("daily", 0, {"clicks": 2000.0, "ctr": 2.0}, "less_than_or_equal_to"),  # ctr > 1
    ("daily", 0, {"spend": -1.0}, "greater_than_or_equal_to"),
    ("daily", 0, {"leads": -1}, "greater_than_or_equal_to"),
    ("daily", 0, {"has_delivery": False}, "spend_known_iff_delivery"),
    ("daily", 0, {"won_leads": 5}, "won_within_converted"),
    ("daily", 0, {"date": pd.Timestamp("2024-01-02 13:00")}, "midnight"),
    ("daily", 0, {"campaign_id": None}, None),
    ("daily", 0, {"platform": None}, None),
    ("weekly", 0, {"week_start": pd.Timestamp("2024-01-02")}, "monday_midnight"),
    ("weekly", 0, {"days_active": 8}, "less_than_or_equal_to"),
    ("weekly", 0, {"conversion_rate": -0.5}, "greater_than_or_equal_to"),
    ("weekly", 0, {"days_active": 0}, "spend_known_iff_active"),
    ("totals", 0, {"n_campaigns_delivering": 99}, "delivering_within_campaigns"),
    ("totals", 0, {"ctr": 1.2}, "less_than_or_equal_to"),
    ("totals", 0, {"week_start": pd.Timestamp("2024-01-07")}, "monday_midnight"),
    ("summary", 0, {"days_active": 0}, "spend_known_iff_active"),
    ("summary", 0, {"cpl": np.inf}, "rates_finite"),
    ("summary", 0, {"total_leads": -3}, "greater_than_or_equal_to"),
]


@pytest.mark.parametrize(
    "table,row,changes,check", BREAKAGES, ids=[f"{b[0]}-{'-'.join(b[2])}" for b in BREAKAGES]
)
def test_model_rejects_broken_invariant(tables, table, row, changes, check):
    _assert_rejected(MODELS[table], _broken(tables[table], row, **changes), check)


def test_duplicate_keys_are_rejected(tables):
    daily, weekly, summary = tables["daily"], tables["weekly"], tables["summary"]
    _assert_rejected(
        ms.DailyCampaignMetrics,
        pd.concat([daily, daily.iloc[[0]]], ignore_index=True),
        "one_row_per_campaign_day",
    )
    _assert_rejected(
        ms.WeeklyCampaignMetrics,
        pd.concat([weekly, weekly.iloc[[0]]], ignore_index=True),
        "one_row_per_campaign_week",
    )
    _assert_rejected(
        ms.CampaignPeriodSummary,
        pd.concat([summary, summary.iloc[[0]]], ignore_index=True),
        "unique",
    )


def test_conversion_rate_above_one_is_allowed(tables):
    # View-through conversions and several conversions per click: conversions above clicks.
    weekly = _broken(tables["weekly"], 0, conversion_rate=1.5)
    ms.WeeklyCampaignMetrics.validate(weekly)
    totals = _broken(tables["totals"], 0, conversion_rate=1.5)
    ms.WeeklyTotals.validate(totals)


def test_lead_conversion_rate_above_one_is_allowed(tables):
    # A flow ratio: more conversions (of older leads) than new leads in a period is legitimate.
    weekly = _broken(tables["weekly"], 0, lead_conversion_rate=2.0)
    ms.WeeklyCampaignMetrics.validate(weekly)
    summary = _broken(tables["summary"], 0, conversion_rate=3.0)
    ms.CampaignPeriodSummary.validate(summary)


def test_week_over_week_model_checks(tables):
    weekly = tables["weekly"]
    _assert_rejected(ms.WeekOverWeek, _broken(weekly, 0, prev_week_status="last_row"), "isin")
    _assert_rejected(
        ms.WeekOverWeek, weekly.drop(columns=["cpl_wow_pct"]), "change_columns_present"
    )
    unknown = weekly.index[weekly["prev_week_status"].eq("unknown")][0]
    _assert_rejected(
        ms.WeekOverWeek, _broken(weekly, int(unknown), spend_prev=10.0), "unknown_prev_is_null"
    )
    _assert_rejected(ms.WeekOverWeek, _broken(weekly, 0, spend_wow_pct=np.inf), "changes_finite")


def test_counts_are_coerced_after_a_narrowing_round_trip(tables):
    daily = tables["daily"].astype({"leads": "int32", "converted_leads": "int16"})
    validated = ms.DailyCampaignMetrics.validate(daily)
    assert validated["leads"].dtype == "int64" and validated["converted_leads"].dtype == "int64"


# (table, count column): a count the table publishes, as the model types it
COUNTS = [
    ("daily", "leads"),
    ("daily", "won_leads"),
    ("daily", "impressions"),
    ("daily", "conversions"),
    ("weekly", "days_active"),
    ("weekly", "clicks"),
    ("weekly", "leads_prev"),
    ("weekly", "impressions_wow_abs"),
    ("totals", "n_campaigns"),
    ("totals", "campaign_days_active"),
    ("totals", "impressions"),
    ("summary", "total_leads"),
    ("summary", "days_active"),
    ("summary", "total_clicks"),
]
NULLABLE_COUNTS = {
    "impressions",
    "clicks",
    "conversions",
    "total_clicks",
    "leads_prev",
    "impressions_wow_abs",
}


@pytest.mark.parametrize("table,column", COUNTS, ids=[f"{t}-{c}" for t, c in COUNTS])
def test_counts_are_integers_and_a_float_count_is_rejected_even_when_whole(tables, table, column):
    validated = validate_frame(MODELS[table], tables[table])
    # null where unknown (Int64), else int64: 12, never 12.0
    assert str(validated[column].dtype) == ("Int64" if column in NULLABLE_COUNTS else "int64")
    floats = tables[table].assign(**{column: tables[table][column].astype("float64")})
    _assert_rejected(MODELS[table], floats, "coerce_dtype")
    fractional = floats.assign(**{column: floats[column] + 0.5})
    _assert_rejected(MODELS[table], fractional, "coerce_dtype")


def test_every_count_of_the_published_tables_is_an_integer(published_sample):
    """Read back as a reader gets them: every count column of every published table holds an
    integer type (``Int64`` where a count can be unknown), none a float."""
    out = published_sample.out_dir
    counts = {
        "daily_campaign_metrics": ["impressions", "clicks", "conversions", "leads"],
        "weekly_campaign_metrics": ["impressions", "leads", "days_active", "leads_prev"],
        "weekly_totals": ["impressions", "leads", "n_campaigns", "quarantined_rows"],
        "campaign_health": ["total_leads", "converted_leads", "days_active", "total_clicks"],
        "health_action_summary": ["n_campaigns", "total_leads", "converted_leads"],
        "campaign_lifetime_metrics": ["total_leads", "days_active", "total_impressions"],
        "quarantine": ["line_number"],
    }
    for table, columns in counts.items():
        frame = pd.read_parquet(out / table if (out / table).is_dir() else out / f"{table}.parquet")
        assert len(frame), table
        for column in columns:
            dtype = frame[column].dtype
            assert pd.api.types.is_integer_dtype(dtype), (table, column, dtype)


def test_models_document_every_field():
    for model in (*MODELS.values(), ms.WeekOverWeek):
        schema = model.to_schema()
        assert schema.strict is False and schema.coerce is True
    daily_fields = ms.DailyCampaignMetrics.to_schema().columns
    assert all(
        daily_fields[c].description
        for c in ("spend", "ctr", "lead_conversion_rate", "has_delivery")
    )
