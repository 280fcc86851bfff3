"""The week's facts sent on to GA4 and Amplitude, and the ledger of what was sent.

Each export asset builds the week's events from the published weekly metrics, anomaly flags
and health buckets, then (by the ``exports`` resource's mode) sends them exactly once through
the ledger, writes them as payload files (dry run), or skips. A failed export fails its asset
with the destination, the number of events and why; the week's other assets stay
materialized, and the next run sends only what failed.
"""

import datetime as dt
import functools

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from campaign_pipeline.assets.common import (
    RunWeeks,
    require_run_weeks,
    schema_check,
    shift_week,
    split_by_week,
    weekly_result,
    write_run_weeks,
)
from campaign_pipeline.constants import partition_timezone
from campaign_pipeline.exports import delivery
from campaign_pipeline.exports.events import EVENT_COLUMNS, CampaignEvent, week_events
from campaign_pipeline.exports.ledger import ExportLedgerTable, Ledger, LedgerError
from campaign_pipeline.parquet_io import read_parquet
from campaign_pipeline.partitions import describe_weeks, weekly_partitions
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.exports import ExportLedgerStore, ExportSettings
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline.resources.storage import PipelineStorage

SOURCES = ["weekly_campaign_metrics", "anomaly_flags", "campaign_health"]
# the raw exports whose rows carry the days a week's figures come from
DATED_EXPORTS = ("insights", "campaign_leads", "lead_status_changes")


def _by_week(frame: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    if not len(frame) or column not in frame:
        return {}
    return split_by_week(frame.assign(**{column: pd.to_datetime(frame[column])}), column)


def read_event_columns(
    storage: PipelineStorage, table: str, weeks: RunWeeks, columns: tuple[str, ...]
) -> pd.DataFrame:
    """What `read_weeks` reads of ``table`` for the run's weeks, ``columns`` only: the events
    carry a dozen of the weekly metrics' 70 columns (a column a stored week lacks stays
    absent, as when the whole file is read)."""
    wanted, week = set(), weeks.first
    while week <= weeks.last:  # every week of the span, as `read_weeks`
        wanted.add(week)
        week = shift_week(week, 1)
    paths = [p for p in (storage.published_dir / table).files(".parquet") if p.stem in wanted]
    frames = []
    for path in paths:
        with path.open_stream() as handle:
            stored = set(pq.ParquetFile(handle).schema_arrow.names)
        frames.append(read_parquet(path, columns=[c for c in columns if c in stored]))
    if not frames:
        return pd.DataFrame()
    filled = [frame for frame in frames if len(frame)]
    return pd.concat(filled, ignore_index=True) if filled else frames[0]


def load_week_events(
    storage: PipelineStorage, weeks: RunWeeks, min_severity: str
) -> dict[str, list[CampaignEvent]]:
    """Every event of each week of the run, from the published tables of those weeks."""
    read = functools.partial(read_event_columns, storage, weeks=weeks)
    weekly = _by_week(
        read(table="weekly_campaign_metrics", columns=EVENT_COLUMNS["weekly"]), "week_start"
    )
    health = _by_week(read(table="campaign_health", columns=EVENT_COLUMNS["health"]), "week_start")
    flags = _by_week(read(table="anomaly_flags", columns=EVENT_COLUMNS["flags"]), "period_start")
    campaigns = storage.read_staging("validated_campaigns", columns=["campaign_id", "platform"])
    empty = pd.DataFrame()
    return {
        week: week_events(
            week,
            weekly.get(week, empty),
            health.get(week, empty),
            flags.get(week, empty),
            campaigns,
            min_severity,
        )
        for week in weeks.keys
    }


def newest_export_time(storage: PipelineStorage) -> dt.datetime | None:
    """When the newest of the dated raw exports the validated layer was read from was written."""
    times = storage.export_times(DATED_EXPORTS)
    return max(times.values()) if times else None


def earlier_held_weeks(storage: PipelineStorage, destination: str, weeks: RunWeeks) -> list[str]:
    """Weeks outside the run whose events an earlier live run held back and that still have
    their published tables: the run sends them along once an export written after them came
    (without it, a week whose rows no later export changes would never be run again)."""
    return [
        week
        for week in storage.held_export_weeks(destination)
        if week not in weeks.keys
        and all(storage.table_path(table, week).exists() for table in SOURCES)
    ]


def remember_held_weeks(
    storage: PipelineStorage,
    destination: str,
    report: delivery.DestinationReport,
    held: dict[str, str],
) -> None:
    """Mark the weeks held back (`earlier_held_weeks` reads them), and clear a week once each
    of its events was sent, found sent or claimed before, or refused (a failed one keeps its
    week marked, so a later run sends it along; a validation-only run sends nothing). Only
    the marks that exist are removed: one listing, not a look per week of a year's range."""
    marked = set(storage.held_export_weeks(destination))
    for week, counts in report.weeks.items():
        if week in held:
            storage.mark_export_held(destination, week, held[week])
        elif week in marked and (
            counts["sent"] + counts["skipped"] + counts["refused"] == counts["events"]
        ):
            storage.clear_export_held(destination, week)


def publish_ledger(storage: PipelineStorage, ledger: Ledger, weeks: RunWeeks) -> dict[str, int]:
    """Write the ledger's rows of the run's weeks as ``<out>/export_ledger/<week>.parquet``."""
    rows = ledger.rows(list(weeks.keys))
    return write_run_weeks(storage, "export_ledger", rows, weeks, "week_start")


def _result(report: delivery.DestinationReport, example: dict | None) -> dg.MaterializeResult:
    metadata = {
        "export": dg.MetadataValue.json(report.to_metadata()),
        "mode": report.mode,
        "events": report.events,
        "sent": report.sent,
        "skipped": int(sum(report.skipped.values())),
        "refused": int(sum(report.refused.values())),
        "failed": report.failed_total,
        "requests": report.requests,
    }
    if example is not None:
        metadata["example_event"] = dg.MetadataValue.json(example)
    return dg.MaterializeResult(metadata=metadata)


def _fail(report: delivery.DestinationReport, message: str) -> dg.Failure:
    return dg.Failure(
        description=message, metadata={"export": dg.MetadataValue.json(report.to_metadata())}
    )


def _run_export(
    context: dg.AssetExecutionContext,
    destination: str,
    resource: GA4MeasurementProtocol | AmplitudeHTTP,
    storage: PipelineStorage,
    exports: ExportSettings,
    store: ExportLedgerStore,
) -> dg.MaterializeResult:
    weeks = RunWeeks.of(context)
    mode, why = delivery.resolve_mode(exports.mode, resource.missing())
    if mode == "off":
        return _result(delivery.DestinationReport(destination, "off", why), None)
    problem = resource.config_problem()
    if problem and mode == "live":
        raise dg.Failure(description=f"{destination}: not exported: {problem}")
    if mode == "live" and store.lease_minutes * 60 < resource.policy().worst_case_seconds():
        context.log.warning(
            f"{destination}: the ledger's claim lease ({store.lease_minutes:g} min) is shorter "
            "than one batch's longest retry schedule: a slow batch's claim could be taken over "
            "by another run"
        )
    require_run_weeks(storage, weeks, *SOURCES)
    earlier = earlier_held_weeks(storage, destination, weeks)
    # each earlier week read alone: `load_week_events` reads every week between its first
    # and last, and a held week can lie months before the run's
    events = {
        week: load_week_events(storage, RunWeeks((week,)), exports.min_severity)[week]
        for week in earlier
    } | load_week_events(storage, weeks, exports.min_severity)
    held = (
        {}
        if exports.send_partial_weeks
        else delivery.weeks_to_hold_back(events, newest_export_time(storage), partition_timezone())
    )
    if earlier:
        sent_along = [week for week in earlier if week not in held]
        context.log.info(
            f"{destination}: {len(earlier)} earlier week(s) held back before ("
            f"{', '.join(earlier)}); sent along now: {', '.join(sent_along) or 'none'}"
        )
    ledger = store.open(storage.published_dir)
    live = mode == "live"
    try:
        if destination == "ga4":
            report = delivery.export_ga4(
                events,
                live=live,
                why=why,
                client=resource,
                ledger=ledger,
                out_dir=storage.published_dir,
                policy=resource.policy(),
                validate=resource.validate_mode,
                log=context.log.info,
                held=held,
            )
        else:
            report = delivery.export_amplitude(
                events,
                live=live,
                why=why,
                client=resource,
                ledger=ledger,
                out_dir=storage.published_dir,
                policy=resource.policy(),
                max_events=resource.max_events_per_request,
                max_bytes=resource.max_request_bytes,
                log=context.log.info,
                held=held,
            )
        if live:
            # the failed rows are visible even on failure
            publish_ledger(storage, ledger, RunWeeks(tuple(sorted(events))))
            remember_held_weeks(storage, destination, report, held)
    except LedgerError as error:
        raise dg.Failure(description=f"{destination}: {error}") from None
    finally:
        ledger.dispose()
    for line in delivery.summary_lines({destination: report.to_metadata()}):
        context.log.info(line.strip())
    if report.failed_total or report.stopped:
        raise _fail(report, report.failure_message())
    example = next((e for week in events.values() for e in week), None)
    return _result(report, delivery.example_payload(destination, example) if example else None)


_EXPORT_DEPS = [dg.AssetDep(name) for name in SOURCES] + ["validated_campaigns"]


@dg.asset(
    group_name="exports",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=_EXPORT_DEPS,
    kinds={"googleanalytics"},
)
def ga4_export(
    context: dg.AssetExecutionContext,
    storage: PipelineStorage,
    exports: ExportSettings,
    ga4: GA4MeasurementProtocol,
    export_ledger_store: ExportLedgerStore,
) -> dg.MaterializeResult:
    """The week's campaign summaries, anomaly flags and health changes as GA4 Measurement
    Protocol events, each sent once (the ledger), inside the protocol's limits, with no
    personal data.

    GA4 answers 2xx even for events it drops, so events are checked against its rules before
    sending and reported "sent (unverified)". Events carry no back-dated timestamp (GA4 would
    move anything older than 72 hours): the week travels as a parameter.
    """
    return _run_export(context, "ga4", ga4, storage, exports, export_ledger_store)


@dg.asset(
    group_name="exports",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=_EXPORT_DEPS,
    kinds={"amplitude"},
)
def amplitude_export(
    context: dg.AssetExecutionContext,
    storage: PipelineStorage,
    exports: ExportSettings,
    amplitude: AmplitudeHTTP,
    export_ledger_store: ExportLedgerStore,
) -> dg.MaterializeResult:
    """The week's campaign summaries, anomaly flags and health changes as Amplitude HTTP V2
    events, each sent once (the ledger, and a deterministic insert_id Amplitude deduplicates on
    for 7 days), in batches under the API's limits, with no personal data."""
    return _run_export(context, "amplitude", amplitude, storage, exports, export_ledger_store)


LEDGER_SOURCES = ("ga4_export", "amplitude_export")


def require_an_export(context: dg.AssetExecutionContext, weeks: RunWeeks) -> None:
    """Fail, naming them, when neither export was ever materialized for some of the run's
    weeks (export_ledger picked alone in the UI).

    Nothing marks such a week in the out dir (an export in mode off writes nothing, a dry run
    no ledger row), so the run records of the instance say it; without this, the week's
    ledger file would be published empty, as if its events had been sent and none were.
    """
    exported: set[str] = set()
    for name in LEDGER_SOURCES:
        records_filter = dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(name), asset_partitions=list(weeks.keys)
        )
        cursor, more = None, True
        while more:
            found = context.instance.fetch_materializations(
                records_filter, limit=1000, cursor=cursor
            )
            exported.update(record.partition_key for record in found.records)
            cursor, more = found.cursor, found.has_more
    missing = [week for week in weeks.keys if week not in exported]
    if missing:
        raise dg.Failure(
            description=f"neither {' nor '.join(LEDGER_SOURCES)} has ever been materialized for "
            f"{describe_weeks(missing)} of this run: materialize them for the run's weeks first "
            "(this asset with its upstream assets)"
        )


@dg.asset(
    group_name="exports",
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=list(LEDGER_SOURCES),
    kinds={"sqlite", "postgres", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "schema",
            asset="export_ledger",
            description="contract columns, one row per (destination, event_key), known statuses",
        )
    ],
)
def export_ledger(
    context: dg.AssetExecutionContext,
    storage: PipelineStorage,
    export_ledger_store: ExportLedgerStore,
) -> dg.MaterializeResult:
    """What was sent where: one row per (destination, event_key) with its status (sent,
    refused, failed, or claimed by a run still sending), the answer's code, the tries and when
    it was accepted. Published from the ledger store as Parquet, per week."""
    weeks = RunWeeks.of(context)
    require_an_export(context, weeks)
    ledger = export_ledger_store.open(storage.published_dir)
    try:
        counts = publish_ledger(storage, ledger, weeks)
        rows = ledger.rows(list(weeks.keys))
        where = ledger.describe()
    except LedgerError as error:
        raise dg.Failure(description=str(error)) from None
    finally:
        ledger.dispose()
    by_status = rows.groupby(["destination", "status"]).size() if len(rows) else pd.Series()
    return weekly_result(
        storage,
        "export_ledger",
        rows,
        counts,
        check_results=[schema_check(ExportLedgerTable, rows)],
        metadata={
            "store": where,
            "by_destination_and_status": dg.MetadataValue.json(
                {f"{d} {s}": int(n) for (d, s), n in by_status.items()}
            ),
        },
        model=ExportLedgerTable,
    )


export_assets = [ga4_export, amplitude_export, export_ledger]
