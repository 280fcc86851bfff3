"""pandera contracts for the metric tables ``metrics.py`` produces.

They guard the invariants downstream readers rely on, so that a bug in the metric code
fails loudly at the asset instead of publishing a wrong number:

* keys are unique, dates are midnights and week starts are Mondays;
* counts are non-negative integers, typed as such (`count_types`: ``int64``, or ``Int64``
  where a count can be unknown): a count column held as float fails, even with whole values;
  money is non-negative;
* rates are null or finite and non-negative; CTR is at most 1: ingestion quarantines clicks >
  impressions, and the rates pair numerator and denominator over the same days, so no period
  can exceed 1;
* conversion_rate (conversions / clicks) has NO upper bound: platforms count view-through
  conversions and several conversions per click, so conversions above clicks are data;
* lead_conversion_rate and the summary's conversion_rate have NO upper bound: they compare
  conversions of a period (of leads possibly added earlier) with leads added in it;
* in the daily table every rate equals its ratio recomputed from the row (null exactly where
  the denominator is 0 or unknown).

``strict=False``: assets add columns (scope, window bounds, week-over-week changes).
``coerce=True``: Parquet round trips may turn int64 into other integer widths (a count
coerces from an integer type only, see `count_types`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from campaign_pipeline.count_types import Count, NullableCount
from campaign_pipeline.metrics import CPM_SCALE, RATES, WOW_METRICS


def _finite_or_null(df: pd.DataFrame, columns) -> pd.Series:
    """Per row: every listed column is null or finite (an inf means a division went unguarded)."""
    values = df[[c for c in columns if c in df.columns]].astype("float64")
    return (values.isna() | np.isfinite(values)).all(axis=1)


_RATE_COLUMNS = (
    "ctr",
    "cpc",
    "cpm",
    "cpa",
    "cpl",
    "conversion_rate",
    "lead_conversion_rate",
    "roas",
)


class _MetricTable(pa.DataFrameModel):
    class Config:
        strict = False
        coerce = True


class _Sums(_MetricTable):
    """Sums and rates shared by the daily and weekly per-campaign tables."""

    platform: Series[str] = pa.Field(description="campaigns.platform ('Unknown' when blank)")
    user_id: Series[str] = pa.Field(description="owner of the campaign")
    project_name: Series[str]
    spend: Series[float] = pa.Field(
        nullable=True, ge=0, description="null: no insights row reported spend"
    )
    impressions: Series[NullableCount] = pa.Field(
        nullable=True, ge=0, description="null: not reported (blank is not zero)"
    )
    clicks: Series[NullableCount] = pa.Field(nullable=True, ge=0, description="null: not reported")
    conversions: Series[NullableCount] = pa.Field(
        nullable=True, ge=0, description="ad-platform conversions; null: not reported"
    )
    leads: Series[Count] = pa.Field(ge=0, description="leads added (by added_date)")
    converted_leads: Series[Count] = pa.Field(
        ge=0, description="leads converting (by first change into a converted status)"
    )
    won_leads: Series[Count] = pa.Field(
        ge=0, description="converted leads with a deal_value (by conversion day)"
    )
    revenue: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="deal_value of won leads (by conversion day); 0 when none; "
        "null: the leads file has no deal_value column",
    )
    ctr: Series[float] = pa.Field(nullable=True, ge=0, le=1, description="clicks / impressions")
    cpc: Series[float] = pa.Field(nullable=True, ge=0, description="spend / clicks")
    cpm: Series[float] = pa.Field(
        nullable=True, ge=0, description=f"{CPM_SCALE:g} * spend / impressions"
    )
    cpa: Series[float] = pa.Field(nullable=True, ge=0, description="spend / conversions")
    cpl: Series[float] = pa.Field(nullable=True, ge=0, description="spend / leads")
    conversion_rate: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="conversions / clicks (above 1 with view-through conversions)",
    )
    lead_conversion_rate: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="converted_leads / leads of the same period (flow ratio, may exceed 1)",
    )
    roas: Series[float] = pa.Field(nullable=True, ge=0, description="revenue / spend")

    @pa.dataframe_check(name="rates_finite")
    def _rates_finite(cls, df: pd.DataFrame) -> pd.Series:
        return _finite_or_null(df, _RATE_COLUMNS)

    @pa.dataframe_check(name="won_within_converted")
    def _won_within_converted(cls, df: pd.DataFrame) -> pd.Series:
        # a won lead's revenue counts on its conversion day, so it is also a converted lead there
        return df["won_leads"] <= df["converted_leads"]


class DailyCampaignMetrics(_Sums):
    """One row per campaign and day with any delivery or lead event; rates of that day."""

    campaign_id: Series[str]
    date: Series[pa.DateTime] = pa.Field(description="calendar day (midnight)")
    has_delivery: Series[bool] = pa.Field(description="the day has an insights row")

    @pa.check("date", name="midnight")
    def _midnight(cls, s: pd.Series) -> pd.Series:
        return s == s.dt.normalize()

    @pa.dataframe_check(name="one_row_per_campaign_day")
    def _unique_key(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["campaign_id", "date"]).any()

    @pa.dataframe_check(name="spend_known_iff_delivery")
    def _spend_iff_delivery(cls, df: pd.DataFrame) -> pd.Series:
        return df["spend"].notna() == df["has_delivery"]

    @pa.dataframe_check(name="rates_match_sums")
    def _rates_match(cls, df: pd.DataFrame) -> pd.Series:
        """Each rate is its ratio recomputed from the row: null exactly where undefined."""
        out = {}
        for rate in RATES:
            num = df[rate.numerator].astype("float64")
            den = df[rate.denominator].astype("float64")
            expected = rate.scale * num / den.where(den > 0)
            got = df[rate.name].astype("float64")
            out[rate.name] = (expected.isna() & got.isna()) | np.isclose(
                got, expected, rtol=1e-9, atol=0
            )
        return pd.DataFrame(out, index=df.index).all(axis=1)


class WeeklyCampaignMetrics(_Sums):
    """One row per Monday week and campaign: sums of the days, rates as ratios of those sums."""

    week_start: Series[pa.DateTime] = pa.Field(description="Monday of the ISO week")
    campaign_id: Series[str]
    days_active: Series[Count] = pa.Field(ge=0, le=7, description="days with an insights row")
    impressions_complete: Series[bool] = pa.Field(
        description="every delivery day reported impressions"
    )
    clicks_complete: Series[bool] = pa.Field(description="every delivery day reported clicks")
    conversions_complete: Series[bool] = pa.Field(
        description="every delivery day reported conversions"
    )
    # the change against the previous calendar week of each count (`metrics.week_over_week`):
    # the previous week's count and the difference are integers, null where unknown
    impressions_prev: Series[NullableCount] = pa.Field(nullable=True)
    impressions_wow_abs: Series[NullableCount] = pa.Field(nullable=True)
    clicks_prev: Series[NullableCount] = pa.Field(nullable=True)
    clicks_wow_abs: Series[NullableCount] = pa.Field(nullable=True)
    conversions_prev: Series[NullableCount] = pa.Field(nullable=True)
    conversions_wow_abs: Series[NullableCount] = pa.Field(nullable=True)
    leads_prev: Series[NullableCount] = pa.Field(nullable=True)
    leads_wow_abs: Series[NullableCount] = pa.Field(nullable=True)
    converted_leads_prev: Series[NullableCount] = pa.Field(nullable=True)
    converted_leads_wow_abs: Series[NullableCount] = pa.Field(nullable=True)

    @pa.check("week_start", name="monday_midnight")
    def _monday(cls, s: pd.Series) -> pd.Series:
        return (s.dt.weekday == 0) & (s == s.dt.normalize())

    @pa.dataframe_check(name="one_row_per_campaign_week")
    def _unique_key(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["week_start", "campaign_id"]).any()

    @pa.dataframe_check(name="spend_known_iff_active")
    def _spend_iff_active(cls, df: pd.DataFrame) -> pd.Series:
        return df["spend"].notna() == (df["days_active"] > 0)


class WeekOverWeek(_MetricTable):
    """Weekly rows plus the change against the campaign's previous calendar week.

    ``<m>_prev``, ``<m>_wow_abs`` (current - prev) and ``<m>_wow_pct`` ((current - prev) / prev,
    a fraction; null when prev is 0 or null) for every metric in ``metrics.WOW_METRICS``.
    """

    week_start: Series[pa.DateTime] = pa.Field(description="Monday of the ISO week")
    campaign_id: Series[str]
    prev_week_status: Series[str] = pa.Field(
        isin=["present", "no_activity", "unknown"],
        description=(
            "previous calendar week: campaign row present / covered but no activity / not loaded"
        ),
    )

    @pa.dataframe_check(name="one_row_per_campaign_week")
    def _unique_key(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["week_start", "campaign_id"]).any()

    @pa.dataframe_check(name="change_columns_present")
    def _columns_present(cls, df: pd.DataFrame) -> bool:
        return all(
            f"{m}_{suffix}" in df.columns
            for m in WOW_METRICS
            for suffix in ("prev", "wow_abs", "wow_pct")
        )

    @pa.dataframe_check(name="changes_finite")
    def _changes_finite(cls, df: pd.DataFrame) -> pd.Series:
        return _finite_or_null(
            df, [f"{m}_{s}" for m in WOW_METRICS for s in ("prev", "wow_abs", "wow_pct")]
        )

    @pa.dataframe_check(name="unknown_prev_is_null")
    def _unknown_null(cls, df: pd.DataFrame) -> pd.Series:
        prev = df[[f"{m}_prev" for m in WOW_METRICS if f"{m}_prev" in df.columns]]
        return ~df["prev_week_status"].eq("unknown") | prev.isna().all(axis=1)


class WeeklyTotals(_MetricTable):
    """Per week (and per group, e.g. platform): sums over campaigns, rates as ratios of sums."""

    week_start: Series[pa.DateTime] = pa.Field(description="Monday of the ISO week")
    n_campaigns: Series[Count] = pa.Field(ge=0, description="campaigns with any row that week")
    n_campaigns_delivering: Series[Count] = pa.Field(
        ge=0, description="campaigns with an insights row that week"
    )
    campaign_days_active: Series[Count] = pa.Field(
        ge=0, description="delivery days summed over campaigns"
    )
    spend: Series[float] = pa.Field(nullable=True, ge=0)
    impressions: Series[NullableCount] = pa.Field(nullable=True, ge=0)
    clicks: Series[NullableCount] = pa.Field(nullable=True, ge=0)
    conversions: Series[NullableCount] = pa.Field(nullable=True, ge=0)
    leads: Series[Count] = pa.Field(ge=0)
    converted_leads: Series[Count] = pa.Field(ge=0)
    won_leads: Series[Count] = pa.Field(ge=0)
    revenue: Series[float] = pa.Field(nullable=True, ge=0)
    ctr: Series[float] = pa.Field(
        nullable=True, ge=0, le=1, description="over campaign-weeks fully reporting both"
    )
    cpc: Series[float] = pa.Field(nullable=True, ge=0)
    cpm: Series[float] = pa.Field(nullable=True, ge=0)
    cpa: Series[float] = pa.Field(nullable=True, ge=0)
    cpl: Series[float] = pa.Field(nullable=True, ge=0)
    conversion_rate: Series[float] = pa.Field(nullable=True, ge=0)
    quarantined_rows: Optional[Series[NullableCount]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True,
        ge=0,
        description="rows of the raw files dated in the week and quarantined (scope all only)",
    )
    quarantined_spend: Optional[Series[float]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True,
        description="spend of the week's quarantined insights rows (scope all only)",
    )
    lead_conversion_rate: Series[float] = pa.Field(
        nullable=True, ge=0, description="flow ratio, may exceed 1"
    )
    roas: Series[float] = pa.Field(nullable=True, ge=0)
    data_first_day: Optional[Series[pa.DateTime]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True,
        description="the week's first day inside the accepted data's range "
        "(PipelineStorage.accepted_day_range): with data_last_day, the days the figures cover",
    )
    data_last_day: Optional[Series[pa.DateTime]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True, description="the week's last day inside the accepted data's range"
    )
    impressions_complete: Series[bool]
    clicks_complete: Series[bool]
    conversions_complete: Series[bool]

    @pa.check("week_start", name="monday_midnight")
    def _monday(cls, s: pd.Series) -> pd.Series:
        return (s.dt.weekday == 0) & (s == s.dt.normalize())

    @pa.dataframe_check(name="delivering_within_campaigns")
    def _delivering(cls, df: pd.DataFrame) -> pd.Series:
        return df["n_campaigns_delivering"] <= df["n_campaigns"]

    @pa.dataframe_check(name="rates_finite")
    def _rates_finite(cls, df: pd.DataFrame) -> pd.Series:
        return _finite_or_null(df, _RATE_COLUMNS)


class CampaignPeriodSummary(_MetricTable):
    """One row per campaign over a date window (the seed's ``campaign_perf_4``)."""

    campaign_id: Series[str] = pa.Field(unique=True)
    total_spend: Series[float] = pa.Field(
        nullable=True, ge=0, description="null: no insights row in the window"
    )
    days_active: Series[Count] = pa.Field(ge=0, description="distinct days with an insights row")
    total_leads: Series[Count] = pa.Field(ge=0, description="leads added in the window")
    converted_leads: Series[Count] = pa.Field(ge=0, description="leads converting in the window")
    won_leads: Series[Count] = pa.Field(ge=0, description="leads won in the window")
    total_impressions: Series[NullableCount] = pa.Field(
        nullable=True, ge=0, description="null: not reported"
    )
    total_clicks: Series[NullableCount] = pa.Field(
        nullable=True, ge=0, description="null: not reported"
    )
    total_conversions: Series[NullableCount] = pa.Field(
        nullable=True, ge=0, description="null: not reported"
    )
    conversion_rate: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="converted_leads / total_leads; may exceed 1 on a short window",
    )
    cpl: Series[float] = pa.Field(nullable=True, ge=0, description="total_spend / total_leads")
    leads_per_day: Series[float] = pa.Field(
        nullable=True, ge=0, description="total_leads / days_active"
    )
    spend_per_day: Series[float] = pa.Field(
        nullable=True, ge=0, description="total_spend / days_active"
    )
    revenue: Series[float] = pa.Field(
        nullable=True,
        ge=0,
        description="deal_value of leads won in the window; null: no deal_value column",
    )
    roas: Series[float] = pa.Field(nullable=True, ge=0, description="revenue / total_spend")
    user_id: Series[str]
    project_name: Series[str]
    platform: Series[str]
    daily_budget: Series[float] = pa.Field(nullable=True, ge=0)
    campaign_name: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="rates_finite")
    def _rates_finite(cls, df: pd.DataFrame) -> pd.Series:
        return _finite_or_null(
            df, ["conversion_rate", "cpl", "leads_per_day", "spend_per_day", "roas"]
        )

    @pa.dataframe_check(name="spend_known_iff_active")
    def _spend_iff_active(cls, df: pd.DataFrame) -> pd.Series:
        return df["total_spend"].notna() == (df["days_active"] > 0)
