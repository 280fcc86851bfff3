"""The weekly report campaign managers open: one self-contained HTML page per week, written
to ``<out>/weekly_report/<week_start>.html`` from the week's published tables."""

import dagster as dg
from pydantic import Field

from campaign_pipeline.assets.common import RunWeeks, progress_logger
from campaign_pipeline.parallel import worker_processes
from campaign_pipeline.partitions import weekly_partitions
from campaign_pipeline.report import (
    MissingTablesError,
    build_weekly_reports,
    write_report_page,
)
from campaign_pipeline.report.build import MAX_FLAG_CHARTS, MIN_PAGES_PER_PROCESS
from campaign_pipeline.report.files import REPORT_FOLDER
from campaign_pipeline.resources.storage import PipelineStorage


class ReportConfig(dg.Config):
    # Processes building a range's pages (a backfill, `campaign-pipeline run`): the step's own
    # and `processes - 1` workers (parallel.map_in_processes); 0 means one per CPU this run
    # may use. A page never depends on it; a range of fewer than
    # report.build.MIN_PAGES_PER_PROCESS pages per process is built in the step's process.
    processes: int = Field(
        default=0,
        ge=0,
        description=(
            "Processes building a range's pages: the step's own and processes - 1 workers. "
            "Default 0: one per CPU the run may use. A page never depends on it; a range of "
            f"fewer than {MIN_PAGES_PER_PROCESS} pages per process is built in the step's process."
        ),
    )
    # Flags drawn as a chart on a page, most severe and surest first; every flag keeps its
    # card. report.build.MAX_FLAG_CHARTS says why 40.
    max_flag_charts: int = Field(
        default=MAX_FLAG_CHARTS,
        ge=0,
        description=(
            "Flags drawn as a chart on a page, most severe and surest first; every flag keeps "
            f"its card. Default {MAX_FLAG_CHARTS}: twice the sample's busiest weeks (20 "
            "flags); a chart costs 10-12 ms, and a large account's week of 347 flags took "
            "5.3-5.6 s to build with every flag charted against 1.5 s with 40."
        ),
    )


@dg.asset(
    group_name="report",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        # each also read for earlier weeks (last week's buckets and totals, the charts' history:
        # report.files), declared for the same week only (assets/common.py says why)
        "campaign_health",
        "anomaly_flags",
        "weekly_totals",
        "weekly_campaign_metrics",
        "daily_campaign_metrics",
        "quarantine",
    ],
    kinds={"html"},
    check_specs=[
        dg.AssetCheckSpec(
            "self_contained",
            asset="weekly_report",
            description="the pages load nothing from anywhere: no src, href or url() that is "
            "not an in-page anchor or a data: URI",
        )
    ],
)
def weekly_report(
    context: dg.AssetExecutionContext, config: ReportConfig, storage: PipelineStorage
) -> dg.MaterializeResult:
    """One HTML page per week for campaign managers: overview (buckets, spend per action, the
    week's totals, quarantined rows), the week's anomalies with charts, a filterable campaign
    explorer, CPL against conversion rate with the rules' thresholds, and the reasons of the
    BAD, HERO and changed campaigns. Styles, script and charts are inline: the page makes no
    request to any host. Rebuilt from the same tables by `campaign-pipeline report --week`.
    """
    weeks = RunWeeks.of(context)
    pages, sizes, outside = {}, {}, {}
    summary, facts = "", {}
    reports = build_weekly_reports(
        storage.published_dir,
        list(weeks.keys),
        worker_processes(config.processes),
        config.max_flag_charts,
    )
    progress = progress_logger(context, "pages built")
    for done, week in enumerate(weeks.keys, start=1):
        try:
            report = next(reports)
        except MissingTablesError as error:
            hint = "materialize them for that week first: weekly_report with its upstream assets"
            raise dg.Failure(description=error.with_hint(hint)) from None
        path = write_report_page(storage.published_dir, week, report.html)
        pages[week], sizes[week] = path, path.stat().size
        if report.outside_references:  # found in the text just written, not read back
            outside[week] = report.outside_references[:5]
        # the metadata needs the last week's summary and facts only; a large account's page
        # (33 MB as a Python string) is let go before the next one is built
        summary, facts = report.summary_markdown, report.facts
        del report
        progress(done, len(weeks.keys))
    latest = pages[weeks.last]
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="self_contained",
                passed=not outside,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"pages_checked": len(pages), "outside_references": outside or "none"},
            )
        ],
        metadata={
            "summary": dg.MetadataValue.md(summary),
            "path": dg.MetadataValue.path(str(latest)),
            "folder": dg.MetadataValue.path(str(storage.published_dir / REPORT_FOLDER)),
            "pages": len(pages),
            "latest_page_kb": round(sizes[weeks.last] / 1024, 1),
            "largest_page_kb": round(max(sizes.values()) / 1024, 1),
            "campaigns_latest_week": facts["campaigns"],
            "flags_latest_week": facts["flags"],
        },
    )
