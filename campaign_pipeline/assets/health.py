"""Campaign health buckets per week over a trailing window, with transitions and the
portfolio's action summary."""

import dataclasses
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from campaign_pipeline import health, metrics
from campaign_pipeline.assets.common import (
    RunWeeks,
    check_stored_weeks,
    history_never_materialized,
    history_weeks,
    read_weeks,
    require_run_weeks,
    shift_week,
    week_bounds,
    weekly_result,
    write_run_weeks,
)
from campaign_pipeline.assets.metrics import DAILY_BLOCK_WEEKS
from campaign_pipeline.health_schemas import CampaignHealth, HealthActionSummary
from campaign_pipeline.partitions import weekly_partitions
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.schemas import validate_frame

_RULES = health.HealthRules()
DEFAULT_WINDOW_DAYS = 28


class HealthConfig(dg.Config):
    """Which window the buckets judge, the benchmark scope and the seed's thresholds (the
    reason of each threshold's default is on ``health.HealthRules``; docs/health.md)."""

    window: Literal["trailing", "lifetime"] = Field(
        default="trailing",
        description=(
            "trailing: the window_days ending on the week's Sunday; lifetime: the whole "
            "history up to that Sunday (the seed's rules as written). Default trailing: a "
            "campaign is judged on how it does now, not on its first months."
        ),
    )
    window_days: int = Field(
        default=DEFAULT_WINDOW_DAYS,
        ge=1,
        description=(
            "Trailing days ending on the week's Sunday (window trailing). Default "
            f"{DEFAULT_WINDOW_DAYS}: four weeks smooths a single odd week while still reacting "
            "within a month. At least 1: a window of no days judges nothing."
        ),
    )
    benchmark_scope: str = Field(
        default=_RULES.benchmark_scope,
        description=(
            "Whom a campaign's percentiles compare it with: platform_wide (everyone), or "
            "campaigns of the same platform, user_id or project_name. Default "
            f"{_RULES.benchmark_scope}: the seed's benchmark universe."
        ),
    )
    min_leads: int = Field(
        default=_RULES.min_leads,
        description=(
            "Fewer leads in the window: NEEDS_MORE_DATA. Default "
            f"{_RULES.min_leads}: below it conversion rate and CPL are too noisy to judge."
        ),
    )
    min_spend: float = Field(
        default=_RULES.min_spend,
        description=(
            "Spend must be strictly above this to be judged (else NEEDS_MORE_DATA). Default "
            f"{_RULES.min_spend}: without spend there is nothing to stop or scale."
        ),
    )
    min_days_active: int = Field(
        default=_RULES.min_days_active,
        description=(
            "Fewer days live in the window: NEEDS_MORE_DATA. Default "
            f"{_RULES.min_days_active}: a campaign live a day or two has not met its audience yet."
        ),
    )
    bad_min_leads: int = Field(
        default=_RULES.bad_min_leads,
        description=(
            "Leads BAD needs (with no conversion and an expensive CPL). Default "
            f"{_RULES.bad_min_leads}: that many leads with no conversion is evidence, not bad luck."
        ),
    )
    bad_max_conversion_rate: float = Field(
        default=_RULES.bad_max_conversion_rate,
        description=(
            "BAD needs a conversion rate at or below this. Default "
            f"{_RULES.bad_max_conversion_rate}: the seed's 'converted nothing'."
        ),
    )
    bad_cpl_quantile: float = Field(
        default=_RULES.bad_cpl_quantile,
        description=(
            "BAD also needs a CPL at or above this percentile of the benchmark universe. "
            f"Default {_RULES.bad_cpl_quantile}: the most expensive quarter (the seed's P75)."
        ),
    )
    top_conversion_quantile: float = Field(
        default=_RULES.top_conversion_quantile,
        description=(
            "HERO and GOOD need a conversion rate at or above this percentile. Default "
            f"{_RULES.top_conversion_quantile}: the top quarter (the seed's P75)."
        ),
    )
    hero_cpl_quantile: float = Field(
        default=_RULES.hero_cpl_quantile,
        description=(
            "HERO also needs a CPL at or below this percentile. Default "
            f"{_RULES.hero_cpl_quantile}: the cheapest quarter (the seed's P25)."
        ),
    )
    median_cpl_quantile: float = Field(
        default=_RULES.median_cpl_quantile,
        description=(
            "GOOD at or below this CPL percentile, MIXED above. Default "
            f"{_RULES.median_cpl_quantile}: the seed's median; one cut, so no gap or overlap."
        ),
    )
    mixed_min_conversion_rate: float = Field(
        default=_RULES.mixed_min_conversion_rate,
        description=(
            "MIXED needs a conversion rate above this. Default "
            f"{_RULES.mixed_min_conversion_rate}: the seed's 'converts at all'."
        ),
    )

    def to_rules(self) -> health.HealthRules:
        names = {f.name for f in dataclasses.fields(health.HealthRules)}
        return health.HealthRules(**{name: getattr(self, name) for name in names})


def _window_start(config: HealthConfig, week_end: pd.Timestamp) -> pd.Timestamp | None:
    return (
        None
        if config.window == "lifetime"
        else week_end - pd.Timedelta(days=config.window_days - 1)
    )


def _buckets_for_week(
    daily: pd.DataFrame, campaigns: pd.DataFrame, week: str, config: HealthConfig
) -> pd.DataFrame:
    _, week_end = week_bounds(week)
    start = _window_start(config, week_end)
    summary = metrics.campaign_period_summary(daily, campaigns, start=start, end=week_end)
    judged = health.assign_health(summary, config.to_rules())
    return judged.assign(
        week_start=pd.Timestamp(week),
        window_start=start if start is not None else daily["date"].min(),
        window_end=week_end,
    )


def _buckets_by_week(
    daily: pd.DataFrame, campaigns: pd.DataFrame, weeks: list[str], config: HealthConfig
) -> pd.DataFrame:
    """The buckets of every week in ``weeks``, each over its own window: the trailing windows
    summed and judged for all weeks at once (the numbers of a call per week, see
    `metrics.trailing_period_summaries`), a lifetime window week by week."""
    if config.window == "lifetime":
        parts = [
            _buckets_for_week(daily[daily["date"] <= week_bounds(w)[1]], campaigns, w, config)
            for w in weeks
        ]
        return pd.concat(parts, ignore_index=True)
    summaries = metrics.trailing_period_summaries(daily, campaigns, weeks, config.window_days)
    judged = health.assign_health(summaries, config.to_rules(), by="week_start")
    week_start = judged.pop("week_start")
    week_end = week_start + pd.Timedelta(days=6)
    return judged.assign(
        week_start=week_start,
        window_start=week_end - pd.Timedelta(days=config.window_days - 1),
        window_end=week_end,
    )


def _first_week_read(weeks: RunWeeks, config: HealthConfig) -> str:
    """The first week of daily metrics the windows of ``weeks`` and of the week before them
    read."""
    if config.window == "lifetime":
        return weekly_partitions.get_first_partition_key()
    return weeks.history_start(history_weeks(config.window_days))


def _health_of_block(
    storage: PipelineStorage, campaigns: pd.DataFrame, block: RunWeeks, config: HealthConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated buckets of a block of weeks and their transitions, from the block's
    daily metrics and the history their windows and the week before the block need."""
    daily = read_weeks(
        storage,
        "daily_campaign_metrics",
        _first_week_read(block, config),
        block.last,
        columns=list(metrics.SUMMARY_INPUTS),
    )
    before = shift_week(block.first, -1)
    every = _buckets_by_week(daily, campaigns, [before, *block.keys], config)
    del daily
    in_block = every["week_start"] >= pd.Timestamp(block.first)
    transitions = health.weekly_transitions(every[in_block], every)
    current = every[in_block].merge(
        transitions[["week_start", "campaign_id", "from_bucket", "changed"]].rename(
            columns={"from_bucket": "previous_bucket", "changed": "bucket_changed"}
        ),
        on=["week_start", "campaign_id"],
        how="left",
    )
    return validate_frame(CampaignHealth, current.reset_index(drop=True)), transitions


@dg.asset(
    group_name="health",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        "daily_campaign_metrics",
        "validated_campaigns",
    ],
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "schema",
            asset="campaign_health",
            description=(
                "buckets and actions from the contract's lists, a reason for every campaign"
            ),
        )
    ],
)
def campaign_health(
    context: dg.AssetExecutionContext, config: HealthConfig, storage: PipelineStorage
) -> dg.MaterializeResult:
    """HERO / GOOD / MIXED / BAD / NEEDS_MORE_DATA per campaign with the recommended action and
    a reason in plain English, judged over the trailing window ending on the week's Sunday.

    The previous week's bucket is recomputed from the same stored daily metrics (not read
    from last week's output), so weeks can be materialized in any order. A range run judges
    `DAILY_BLOCK_WEEKS` weeks at a time, each block with the history its windows need, so it
    never holds a year of daily rows; a week's buckets do not depend on its block.
    """
    weeks = RunWeeks.of(context)
    require_run_weeks(storage, weeks, "daily_campaign_metrics")
    campaigns = storage.read_staging("validated_campaigns")
    window = "the whole history" if config.window == "lifetime" else f"{config.window_days} days"
    unread = history_never_materialized(
        context,
        storage,
        "daily_campaign_metrics",
        _first_week_read(weeks, config),
        weeks.last,
        f"the buckets of this run are judged without them, on fewer days than the window "
        f"their rows name ({window}), and previous_bucket / bucket_changed likewise, so they "
        "can differ from their Monday runs'. Materialize daily_campaign_metrics for those "
        "weeks, then campaign_health again, for the buckets their Monday runs give.",
    )
    counts: dict[str, int] = {}
    newly: dict[str, list[str]] = {}
    summaries = []
    for block in weeks.blocks(DAILY_BLOCK_WEEKS):
        judged, transitions = _health_of_block(storage, campaigns, block, config)
        counts |= write_run_weeks(storage, "campaign_health", judged, block, "week_start")
        for week in block.keys:  # the action summary and the news of each week (a few rows)
            table = judged[judged["week_start"] == pd.Timestamp(week)]
            summaries.append(health.action_summary(table).assign(week_start=pd.Timestamp(week)))
            moved = transitions[transitions["week_start"] == pd.Timestamp(week)]
            newly[week] = health.newly_bad_or_hero(moved)["campaign_id"].astype(str).tolist()
        del judged, transitions  # before the next block is read
    action_summaries = validate_frame(HealthActionSummary, pd.concat(summaries, ignore_index=True))
    write_run_weeks(storage, "health_action_summary", action_summaries, weeks, "week_start")
    latest = table  # the run's last week
    buckets = latest["health_bucket"].value_counts().to_dict()
    stored = check_stored_weeks(storage, "campaign_health", weeks, CampaignHealth)
    return weekly_result(
        storage,
        "campaign_health",
        latest,
        counts,
        check_results=[stored.schema],
        preview=latest[["campaign_id", "health_bucket", "recommended_action", "reason"]],
        metadata={
            "buckets_latest_week": dg.MetadataValue.json({k: int(v) for k, v in buckets.items()}),
            "became_bad_or_hero": dg.MetadataValue.json(newly),
            "action_summary": dg.MetadataValue.md(summaries[-1].to_markdown(index=False)),
            "history_weeks_never_materialized": len(unread),
        },
        model=CampaignHealth,
    )
