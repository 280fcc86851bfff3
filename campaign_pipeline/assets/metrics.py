"""Daily and weekly campaign metrics, weekly totals, and the lifetime table.

The weekly assets own the files of their weeks and can run for many weeks in one run
(single-run backfill); each reads only what its weeks need, so re-running one week rewrites
that week's rows and nothing else, and a Monday run costs about a week's work however long the
stored history is.
"""

import dagster as dg
import pandas as pd
import pyarrow.compute as pc

from campaign_pipeline import metric_schemas, metrics
from campaign_pipeline.assets.common import (
    RunWeeks,
    check_stored_weeks,
    column_total,
    read_weeks,
    reconcile_check,
    refuse_files_with_none_accepted,
    require_run_weeks,
    revenue_reported,
    schema_check,
    table_checks,
    weekly_result,
    write_run_weeks,
)
from campaign_pipeline.constants import IMPLAUSIBLE_REASONS
from campaign_pipeline.memory import return_free_pages
from campaign_pipeline.metadata import PREVIEW_ROWS, markdown_preview, table_schema
from campaign_pipeline.partitions import monday_of, weekly_partitions
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.schemas import validate_frame

GROUP = "metrics"
# the columns whose stored totals must equal their source's (nothing lost or doubled)
DAILY_TOTALS = ("spend", "leads")
WEEKLY_TOTALS = ("spend", "leads", "converted_leads", "revenue")


# Weeks of daily metrics built at once. A block's delivery rows and lead events are read,
# joined and written before the next block's are read, so a run over a year holds about this
# many weeks of them instead of the year's (at 16,000 campaigns, a year of them joined at once
# took 2.7 GB in a run of this step alone, 1.3 GB in blocks). Every daily row depends only on
# its own day, so no published number depends on the block size; each block costs one
# filtered read of the validated tables.
DAILY_BLOCK_WEEKS = 8


def _between(column: str, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple]:
    """A pyarrow row filter: ``column`` within [start, end] (null never matches)."""
    return [(column, ">=", start), (column, "<=", end)]


def _daily_metrics_of_days(
    storage: PipelineStorage,
    campaigns: pd.DataFrame,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[pd.DataFrame, float]:
    """The daily metrics of the days start..end (inclusive; None and None: every day), read
    from the validated delivery and the lead events with an event in them, and the validated
    spend of those days."""
    bounded = start is not None and end is not None
    # the campaign ids as dictionaries: a bounded read keeps a week or a block of the year's
    # rows, and decodes each campaign's id once instead of once per row it reads
    ids = ["campaign_id"] if bounded else None
    insights = storage.read_staging(
        "validated_insights",
        filters=_between("date", start, end) if bounded else None,
        dictionary=ids,
    )
    events = storage.read_staging(
        "lead_events",
        columns=metrics.DAILY_EVENT_COLUMNS,
        filters=[
            _between(column, start, end)
            for column in ("added_date", "converted_date", "revenue_date")
        ]
        if bounded
        else None,
        dictionary=ids,
    )
    reported = revenue_reported(storage)
    daily = metrics.daily_campaign_metrics(
        insights, events, campaigns, start=start, end=end, revenue_reported=reported
    )
    return daily, column_total(insights, "spend")


def _first_rows(shown: pd.DataFrame | None, block: pd.DataFrame) -> pd.DataFrame:
    """What a blocked run's preview shows: the first rows of its first block with rows."""
    return block.head(PREVIEW_ROWS) if shown is None or (shown.empty and len(block)) else shown


def _history_days(storage: PipelineStorage) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last day with delivery or a lead event (None: there is neither)."""
    days = []
    for name, columns in (
        ("validated_insights", ["date"]),
        ("lead_events", ["added_date", "converted_date", "revenue_date"]),
    ):
        for column in storage.read_staging_table(name, columns=columns).columns:
            bounds = pc.min_max(column)
            if bounds["min"].is_valid:
                days += [pd.Timestamp(bounds["min"].as_py()), pd.Timestamp(bounds["max"].as_py())]
    return (min(days).normalize(), max(days).normalize()) if days else None


def _day_blocks(storage: PipelineStorage, block_days: int) -> list[tuple]:
    """The history's days as consecutive (first, last) blocks of ``block_days`` days; one
    open block when the history is empty."""
    history = _history_days(storage)
    if history is None:
        return [(None, None)]
    first, last = history
    length = pd.Timedelta(days=block_days - 1)
    return [
        (start, min(start + length, last))
        for start in pd.date_range(first, last, freq=f"{block_days}D")
    ]


# What the daily and lifetime tables are built from. quarantine: its blocking check stops the run
# on a raw file with rows and none accepted, before either table is built.
VALIDATED_INPUTS = [
    "validated_campaigns",
    "validated_insights",
    "validated_leads",
    "lead_events",
    "quarantine",
]


@dg.asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=VALIDATED_INPUTS,
    kinds={"pandas", "parquet"},
    check_specs=table_checks("daily_campaign_metrics", "validated"),
)
def daily_campaign_metrics(
    context: dg.AssetExecutionContext, storage: PipelineStorage
) -> dg.MaterializeResult:
    """Per campaign and day: delivery, leads and conversions joined, rates as ratios of sums.

    Leads count on the day they were added; conversions on the day of the lead's first change
    into a converted status (`lead_events`), so a week's conversions can come from leads of
    earlier weeks. Only the run's days are read: the delivery of those days and the leads with
    an event in them, `DAILY_BLOCK_WEEKS` weeks at a time.
    """
    refuse_files_with_none_accepted(storage)
    weeks = RunWeeks.of(context)
    window = (weeks.start, weeks.end)
    campaigns = storage.read_staging("validated_campaigns")
    counts: dict[str, int] = {}
    validated_spend, first_rows = 0.0, None
    for block in weeks.blocks(DAILY_BLOCK_WEEKS):
        daily, spend = _daily_metrics_of_days(storage, campaigns, block.start, block.end)
        daily = validate_frame(metric_schemas.DailyCampaignMetrics, daily)
        counts |= write_run_weeks(storage, "daily_campaign_metrics", daily, block, "date")
        validated_spend += spend
        first_rows = _first_rows(first_rows, daily)
        del daily  # before the next block is read
    stored = check_stored_weeks(
        storage, "daily_campaign_metrics", weeks, metric_schemas.DailyCampaignMetrics, DAILY_TOTALS
    )
    leads_added = storage.read_staging_table(
        "validated_leads", columns=["added_date"], filters=_between("added_date", *window)
    ).num_rows
    checks = [
        stored.schema,
        reconcile_check(
            "reconciles_with_validated",
            {
                "spend": (stored.totals["spend"], validated_spend),
                "leads": (stored.totals["leads"], leads_added),
            },
        ),
    ]
    return weekly_result(
        storage,
        "daily_campaign_metrics",
        first_rows,
        counts,
        check_results=checks,
        model=metric_schemas.DailyCampaignMetrics,
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        "daily_campaign_metrics",
        "validated_campaigns",
    ],
    kinds={"pandas", "parquet"},
    check_specs=table_checks("weekly_campaign_metrics", "daily"),
)
def weekly_campaign_metrics(
    context: dg.AssetExecutionContext, storage: PipelineStorage
) -> dg.MaterializeResult:
    """Per campaign and week: sums and ratio-of-sums rates, revenue and ROAS, and the change
    against the campaign's previous calendar week (read from that week's daily partition).

    A range run reads its daily rows `DAILY_BLOCK_WEEKS` weeks at a time, each block with the
    week before it, so it never holds a year of them. A previous week is known (an empty one
    is ``no_activity``, not ``unknown``) when its daily partition is stored and the accepted
    data reach back to it, whatever block or run it falls in."""
    weeks = RunWeeks.of(context)
    require_run_weeks(storage, weeks, "daily_campaign_metrics")
    campaigns = storage.read_staging("validated_campaigns")
    known_weeks = _weeks_with_data_stored(storage)
    counts: dict[str, int] = {}
    daily_totals = dict.fromkeys(WEEKLY_TOTALS, 0.0)
    first_rows = None
    for block in weeks.blocks(DAILY_BLOCK_WEEKS):
        daily = read_weeks(
            storage,
            "daily_campaign_metrics",
            block.history_start(1),
            block.last,
            columns=list(metrics.SUMMARY_INPUTS),
        )
        weekly = metrics.week_over_week(
            metrics.weekly_campaign_metrics(daily, campaigns), known_weeks
        )
        in_block = weekly["week_start"].dt.strftime("%Y-%m-%d").isin(block.keys)
        weekly = validate_frame(metric_schemas.WeeklyCampaignMetrics, weekly[in_block])
        counts |= write_run_weeks(storage, "weekly_campaign_metrics", weekly, block, "week_start")
        these_days = daily[daily["date"] >= block.start] if len(daily) else daily
        for column in WEEKLY_TOTALS:
            daily_totals[column] += column_total(these_days, column)
        first_rows = _first_rows(first_rows, weekly)
        del daily, weekly, these_days  # before the next block is read
    stored = check_stored_weeks(
        storage,
        "weekly_campaign_metrics",
        weeks,
        metric_schemas.WeeklyCampaignMetrics,
        WEEKLY_TOTALS,
    )
    checks = [
        stored.schema,
        reconcile_check(
            "reconciles_with_daily",
            {column: (stored.totals[column], daily_totals[column]) for column in WEEKLY_TOTALS},
        ),
    ]
    return weekly_result(
        storage,
        "weekly_campaign_metrics",
        first_rows,
        counts,
        check_results=checks,
        model=metric_schemas.WeeklyCampaignMetrics,
    )


def _weeks_with_data_stored(storage: PipelineStorage) -> list[str]:
    """The weeks whose daily partition is stored, from the accepted data's first week on:
    those a week-over-week comparison knows, rows or none (`metrics.week_over_week`)."""
    days = storage.accepted_day_range()
    if days is None:
        return []
    first = monday_of(days[0].date()).isoformat()
    return [week for week in storage.table_weeks("daily_campaign_metrics") if week >= first]


@dg.asset(
    group_name=GROUP,
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["weekly_campaign_metrics", "quarantine"],
    kinds={"pandas", "parquet"},
    check_specs=table_checks("weekly_totals", "weekly_campaign_metrics"),
)
def weekly_totals(
    context: dg.AssetExecutionContext, storage: PipelineStorage
) -> dg.MaterializeResult:
    """Totals across all campaigns and per platform each week (the seed's overall weekly totals).

    ``scope`` is ``all`` for the whole portfolio, else the platform name. The portfolio rows
    also count the week's quarantined rows and spend, so nothing rejected is hidden and the
    totals reconcile with the raw files. Every row carries the accepted data's first and last
    day (``metrics.with_data_range``): the report tells a partial week by them.
    """
    weeks = RunWeeks.of(context)
    require_run_weeks(storage, weeks, "weekly_campaign_metrics")
    weekly = read_weeks(
        storage,
        "weekly_campaign_metrics",
        weeks.first,
        weeks.last,
        columns=list(metrics.WEEKLY_TOTALS_INPUTS),
    )
    overall = metrics.weekly_totals(weekly).assign(scope="all")
    per_platform = metrics.weekly_totals(weekly, by="platform")
    per_platform = per_platform.assign(scope=per_platform["platform"]).drop(columns=["platform"])
    totals = pd.concat([overall, per_platform], ignore_index=True)
    rejected = metrics.quarantine_by_week(
        storage.read_table("quarantine"), excluded_spend_reasons=IMPLAUSIBLE_REASONS
    )
    totals = metrics.with_data_range(
        metrics.with_quarantine(totals, rejected), storage.accepted_day_range()
    )
    totals = validate_frame(metric_schemas.WeeklyTotals, totals)
    counts = write_run_weeks(storage, "weekly_totals", totals, weeks, "week_start")
    portfolio_totals = ("spend", "leads", "converted_leads")
    stored = check_stored_weeks(
        storage,
        "weekly_totals",
        weeks,
        metric_schemas.WeeklyTotals,
        portfolio_totals,
        totals_of=lambda week: week[week["scope"] == "all"],
    )
    checks = [
        stored.schema,
        reconcile_check(
            "reconciles_with_weekly_campaign_metrics",
            {
                column: (stored.totals[column], column_total(weekly, column))
                for column in portfolio_totals
            },
        ),
    ]
    return weekly_result(
        storage,
        "weekly_totals",
        totals,
        counts,
        check_results=checks,
        model=metric_schemas.WeeklyTotals,
    )


@dg.asset(
    group_name=GROUP,
    deps=VALIDATED_INPUTS,
    kinds={"pandas", "parquet"},
    check_specs=table_checks("campaign_lifetime_metrics", "validated", weekly=False),
)
def campaign_lifetime_metrics(storage: PipelineStorage) -> dg.MaterializeResult:
    """One row per campaign over its whole history (the seed's ``campaign_perf_4``).

    The history's daily metrics are built `DAILY_BLOCK_WEEKS` weeks at a time and only the
    daily sums the summary adds up are kept, so a large account's history is never joined at
    once. Each campaign's days still reach the sums in date order, so the sums are those of a
    single pass over the history.
    """
    refuse_files_with_none_accepted(storage)
    campaigns = storage.read_staging("validated_campaigns")
    parts, validated_spend = [], 0.0
    for start, end in _day_blocks(storage, DAILY_BLOCK_WEEKS * 7):
        daily, spend = _daily_metrics_of_days(storage, campaigns, start, end)
        parts.append(daily[list(metrics.SUMMARY_INPUTS)])
        validated_spend += spend
        del daily
        # a block's joins leave their freed pages in the heap, between the kept columns of
        # the blocks: handed back, a year of 16,000 campaigns holds 0.4 GB less by the end
        return_free_pages()
    daily = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    del parts
    lifetime = validate_frame(
        metric_schemas.CampaignPeriodSummary, metrics.campaign_period_summary(daily, campaigns)
    )
    del daily
    validated_leads = storage.staging_rows("validated_leads")
    path = storage.write_table("campaign_lifetime_metrics", lifetime)
    stored = storage.read_table("campaign_lifetime_metrics")
    return dg.MaterializeResult(
        check_results=[
            schema_check(metric_schemas.CampaignPeriodSummary, stored),
            reconcile_check(
                "reconciles_with_validated",
                {
                    "total_spend": (stored["total_spend"].sum(), validated_spend),
                    "total_leads": (stored["total_leads"].sum(), validated_leads),
                },
            ),
        ],
        metadata={
            "dagster/row_count": len(lifetime),
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(
                markdown_preview(lifetime.sort_values("total_spend", ascending=False))
            ),
            "dagster/column_schema": table_schema(lifetime),
        },
    )


metric_assets = [
    daily_campaign_metrics,
    weekly_campaign_metrics,
    weekly_totals,
    campaign_lifetime_metrics,
]
