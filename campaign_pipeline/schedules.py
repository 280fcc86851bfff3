"""The weekly schedule: Monday 06:00 materializes the week that just ended.

A tick at Monday 06:00 asks for the last *complete* weekly partition, i.e. the
Monday..Sunday that ended a few hours earlier. 06:00 leaves the ad platforms' overnight
exports time to land. The timezone is the partitions' (``CAMPAIGN_PIPELINE_TIMEZONE``, UTC by
default), so "Monday 06:00" and "the week" are both in the marketing team's local time.

With the raw-file sensor on as well, the exports that land overnight have usually been run
already: their run covers the week that just ended, from the same files. The tick then skips
instead of validating a year of exports and judging the week a second time. It compares
contents, not times (a copy that keeps the source's modification time would fool a time
check): the tick hashes the raw files and skips when the latest successful run of the job that
covered the week was asked for with exactly those contents (the ``campaign_pipeline/raw_contents``
tag the sensor and this schedule put on their runs). With the Salesforce source on, the tick
always runs: the Monday run is what pulls the week's leads.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from campaign_pipeline import raw_files
from campaign_pipeline.partitions import (
    RAW_CONTENTS_TAG,
    TRIGGER_TAG,
    last_complete_week,
    run_covers,
    weekly_partitions,
)
from campaign_pipeline.resources.salesforce import SalesforceSource
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.salesforce.client import SalesforceConfigError

# 06:00 on Monday: after the nightly exports, before the teams' Monday review.
SCHEDULE_HOUR = 6
SCHEDULE_MINUTE = 0
MONDAY = 1  # cron day of week


# How many of the job's latest successful runs a tick looks through for the week's last run.
# The week ended hours before the tick, so a run that covered it is among the last few; 200 is
# weeks of the sensor's runs, and not finding one only means the week is run (never skipped).
RUNS_LOOKED_AT = 200


def latest_run_covering(
    instance: dg.DagsterInstance, job_name: str, week: str
) -> dg.DagsterRun | None:
    """The latest successful run of ``job_name`` that materialized ``week`` (its partition, or a
    range holding it): the run whose tables the week holds now. None if none is recent."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]),
        limit=RUNS_LOOKED_AT,
    )
    return next((r.dagster_run for r in records if run_covers(r.dagster_run.tags, week)), None)


def _salesforce_on(salesforce: SalesforceSource) -> bool:
    try:
        return salesforce.is_configured
    except SalesforceConfigError:  # half set: the run reports it, so it must run
        return True


def build_weekly_schedule(
    job: dg.JobDefinition | UnresolvedAssetJobDefinition,
    *,
    name: str = "weekly_pipeline_schedule",
    hour_of_day: int = SCHEDULE_HOUR,
    minute_of_hour: int = SCHEDULE_MINUTE,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
):
    """A schedule running ``job`` (weekly-partitioned) for the week just ended, unless the
    latest run of ``job`` that covered that week did so from the raw files as they are now.

    STOPPED by default like every Dagster schedule: a deployment turns it on once
    (UI, or ``dagster schedule start weekly_pipeline_schedule``) and the state persists in
    the instance's schedule storage.
    """
    timezone = weekly_partitions.timezone

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=f"{minute_of_hour} {hour_of_day} * * {MONDAY}",
        execution_timezone=timezone,
        default_status=default_status,
        description=(
            f"Mondays {hour_of_day:02d}:{minute_of_hour:02d} (partition timezone): "
            f"{job.name} for the week that just ended, unless a run already covered it from the "
            "raw files as they are now."
        ),
    )
    def weekly_schedule(
        context: dg.ScheduleEvaluationContext,
        storage: PipelineStorage,
        salesforce: SalesforceSource,
    ):
        when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        week = last_complete_week(when.astimezone(ZoneInfo(timezone)))
        if week is None:
            return dg.SkipReason("no weekly partition has ended yet")
        try:
            contents = raw_files.current_contents_digest(storage.raw_dir)
        except Exception as error:  # the run will say what is wrong with the folder
            context.log.warning(f"could not hash {storage.raw_dir}: {error}")
            contents = None
        if contents is not None and not _salesforce_on(salesforce):
            done = latest_run_covering(context.instance, job.name, week)
            if done is not None and done.tags.get(RAW_CONTENTS_TAG) == contents:
                trigger = done.tags.get(TRIGGER_TAG)
                return dg.SkipReason(
                    f"week {week} was already run from the raw files as they are now "
                    f"(run {done.run_id}{f', by {trigger}' if trigger else ''})"
                )
        tags = {
            TRIGGER_TAG: "weekly_schedule",
            **({RAW_CONTENTS_TAG: contents} if contents else {}),
        }
        return dg.RunRequest(run_key=week, partition_key=week, tags=tags)

    return weekly_schedule
