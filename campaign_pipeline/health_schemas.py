"""pandera models of the published `campaign_health` table (data contract) and of
`health_action_summary`.

For `campaign_health` the contract's columns and the window's counts are pinned; the other
columns of ``assign_health`` (percentiles, previous bucket, ...) pass through
(``strict = False``). Counts are integers (`count_types`): a count column held as float fails.
"""

from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from campaign_pipeline.constants import HEALTH_BUCKETS, RECOMMENDED_ACTIONS
from campaign_pipeline.count_types import Count, NullableCount


class CampaignHealth(pa.DataFrameModel):
    week_start: Series[pa.DateTime] = pa.Field(description="Monday of the judged week")
    campaign_id: Series[str]
    health_bucket: Series[str] = pa.Field(isin=list(HEALTH_BUCKETS))
    recommended_action: Series[str] = pa.Field(isin=list(RECOMMENDED_ACTIONS))
    reason: Series[str] = pa.Field(
        str_length={"min_value": 5}, description="plain English, with the numbers"
    )
    total_spend: Series[float] = pa.Field(nullable=True, ge=0)
    total_leads: Series[Count] = pa.Field(ge=0, description="leads added in the window")
    converted_leads: Series[Count] = pa.Field(ge=0, description="leads converting in the window")
    conversion_rate: Series[float] = pa.Field(nullable=True, ge=0)
    cpl: Series[float] = pa.Field(nullable=True, ge=0)
    days_active: Series[Count] = pa.Field(ge=0, description="days with an insights row")
    won_leads: Optional[Series[Count]] = pa.Field(ge=0)  # noqa: UP045 (pandera)
    total_impressions: Optional[Series[NullableCount]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True, ge=0, description="null: not reported"
    )
    total_clicks: Optional[Series[NullableCount]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True, ge=0, description="null: not reported"
    )
    total_conversions: Optional[Series[NullableCount]] = pa.Field(  # noqa: UP045 (pandera)
        nullable=True, ge=0, description="null: not reported"
    )
    universe_size: Optional[Series[Count]] = pa.Field(  # noqa: UP045 (pandera)
        ge=0, description="campaigns in the segment's benchmark universe"
    )

    @pa.dataframe_check(name="one_row_per_campaign_week")
    def _unique(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["week_start", "campaign_id"]).any()

    @pa.dataframe_check(name="action_matches_bucket")
    def _action(cls, df: pd.DataFrame) -> pd.Series:
        from campaign_pipeline.health import ACTION_OF_BUCKET

        return df["recommended_action"] == df["health_bucket"].map(ACTION_OF_BUCKET)

    @pa.dataframe_check(name="reason_ends_with_the_action")
    def _reason(cls, df: pd.DataFrame) -> pd.Series:
        """A reason that argues for another action than the one published is a bug."""
        reason = df["reason"].astype(str)
        return reason.str.contains(" -> ", regex=False) & (
            reason.str.rsplit(" -> ", n=1).str[-1] == df["recommended_action"]
        )

    class Config:
        strict = False
        coerce = True


class HealthActionSummary(pa.DataFrameModel):
    """A week's campaigns, spend and leads per recommended action (`health.action_summary`)."""

    week_start: Series[pa.DateTime]
    recommended_action: Series[str] = pa.Field(isin=list(RECOMMENDED_ACTIONS))
    health_bucket: Series[str] = pa.Field(isin=list(HEALTH_BUCKETS))
    n_campaigns: Series[Count] = pa.Field(ge=0)
    total_spend: Series[float] = pa.Field(nullable=True, ge=0)
    share_of_spend: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    n_spend_unknown: Series[Count] = pa.Field(ge=0)
    total_leads: Series[Count] = pa.Field(ge=0)
    converted_leads: Series[Count] = pa.Field(ge=0)

    @pa.dataframe_check(name="every_action_once_a_week")
    def _actions(cls, df: pd.DataFrame) -> bool:
        per_week = df.groupby("week_start")["recommended_action"]
        return (
            bool((per_week.nunique() == len(RECOMMENDED_ACTIONS)).all())
            and not df.duplicated(["week_start", "recommended_action"]).any()
        )

    @pa.dataframe_check(name="unknown_spend_counts_within_the_campaigns")
    def _unknown(cls, df: pd.DataFrame) -> pd.Series:
        return df["n_spend_unknown"] <= df["n_campaigns"]

    @pa.dataframe_check(name="spend_null_exactly_when_none_was_reported")
    def _null_spend(cls, df: pd.DataFrame) -> pd.Series:
        none_reported = (df["n_campaigns"] > 0) & (df["n_spend_unknown"] == df["n_campaigns"])
        return df["total_spend"].isna() == none_reported

    class Config:
        strict = True
        coerce = True
